"""Socket.IO: the ``/digital-twin`` namespace and the bridge that feeds it.

Each server process runs one ``TwinBroadcaster``. It listens on the Channels
layer for "the twin changed" signals from any process (see ``twin.events``),
rebuilds the snapshot from the database and emits it to every client of this
process. Everything it needs from the database comes from whole sync functions
called through ``sync_to_async``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import socketio
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import close_old_connections, connection
from engineio import packet as eio_packet

from twin.delta import delta_is_empty, state_diff
from twin.events import TWIN_GROUP
from twin.selectors import reader_identify, session_key_from_cookie_header
from twin.snapshot import TwinState, snapshot_build
from twin.socketio_json import OrjsonForSocketIO

logger = logging.getLogger(__name__)
T = TypeVar("T")

NAMESPACE = "/digital-twin"
TWIN_STATE_EVENT = "twin-state"
TWIN_DELTA_EVENT = "twin-delta"
# Clients receive full states unless they subscribed to deltas.
FULL_ROOM = "full"
DELTA_ROOM = "delta"
# New clients get their first full state in rounds of this many, this far apart.
SYNC_BATCH = 5
SYNC_PAUSE_SECONDS = 0.1
# Channels' default group expiry is a day; joining again hourly keeps a
# long-lived listener in the group.
GROUP_REJOIN_SECONDS = 3600.0


async def _db_call(fn: Callable[..., T], /, **kwargs: Any) -> T:
    """Run a whole sync database function on a worker thread, on a connection that is still good.

    Off the thread-sensitive executor, so a slow snapshot never queues behind
    (or holds up) Django's request handling.
    """

    def call() -> T:
        close_old_connections()
        try:
            return fn(**kwargs)
        finally:
            close_old_connections()

    return await sync_to_async(call, thread_sensitive=False)()


# The broadcaster's own thread, which keeps its pooled connection between
# rebuilds: under overload a rebuild that queued for a connection behind the
# agents' requests left dashboards seconds behind (docs/reliability.md).
_snapshot_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="twin-snapshot")


async def _snapshot_call() -> TwinState:
    """``snapshot_build`` on the broadcaster's thread and connection, replaced when no longer usable."""

    def call() -> TwinState:
        if connection.connection is not None and not connection.is_usable():
            connection.close()
        try:
            return snapshot_build()
        except Exception:
            # A failed statement may have left the connection broken; the next
            # rebuild starts on a fresh one.
            connection.close()
            raise

    return await asyncio.get_running_loop().run_in_executor(_snapshot_thread, call)


class TwinBroadcaster:
    """Coalesces change signals into at most ``TWIN_PUSH_MAX_PER_SECOND`` pushes.

    A signal marks the twin dirty; the push loop waits for dirt or for the
    refresh interval, keeps the minimum gap since the last push, rebuilds and
    emits when the document differs from the one last sent. A signal that
    arrives during a rebuild leaves the twin dirty, so the last change is
    always pushed. The periodic rebuild carries status changes that only the
    clock causes, and heals a signal the channel layer dropped.
    """

    def __init__(self, server: socketio.AsyncServer) -> None:
        self.server = server
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._dirty = asyncio.Event()
        # Clients owed a full state: the freshest, or the last pushed with its version.
        self._waiting_full: set[str] = set()
        self._waiting_versioned: set[str] = set()
        self._waiting = asyncio.Event()
        self._emit_lock = asyncio.Lock()
        self._state: TwinState | None = None
        self._state_built_at = 0.0
        # The last state pushed and its version: deltas are relative to it.
        self._published: TwinState | None = None
        self._version = 0

    def ensure_started(self) -> None:
        """Start the listener and the push loop once per process and event loop.

        daphne sends no lifespan events, so this runs on the first connection.
        """
        loop = asyncio.get_running_loop()
        if self._loop is loop and all(not t.done() for t in self._tasks):
            return
        self._loop = loop
        self._dirty = asyncio.Event()
        self._waiting = asyncio.Event()
        self._emit_lock = asyncio.Lock()
        self._tasks = [
            loop.create_task(self._listen()),
            loop.create_task(self._push_loop()),
            loop.create_task(self._sync_loop()),
        ]

    async def current_state(self) -> TwinState:
        """The state for a client that just connected: the last one built if still current."""
        fresh = time.monotonic() - self._state_built_at < settings.TWIN_REFRESH_SECONDS
        if self._state is None or self._dirty.is_set() or not fresh:
            await self._rebuild()
        assert self._state is not None
        return self._state

    def greet(self, sid: str) -> None:
        """Queue the current state for a client that just connected (see ``_sync_loop``)."""
        self._waiting_full.add(sid)
        self._waiting.set()

    async def subscribe(self, sid: str, mode: str) -> dict[str, Any]:
        """Switch a client between full states and deltas, and queue the full state it starts from.

        A delta subscriber's full state is the state last pushed, with the
        ``version`` the next delta builds on.
        """
        if mode == "delta":
            await self.server.leave_room(sid, FULL_ROOM, namespace=NAMESPACE)
            await self.server.enter_room(sid, DELTA_ROOM, namespace=NAMESPACE)
            # A client subscribing right after connecting needs one full state, not two.
            self._waiting_full.discard(sid)
            self._waiting_versioned.add(sid)
        else:
            await self.server.leave_room(sid, DELTA_ROOM, namespace=NAMESPACE)
            await self.server.enter_room(sid, FULL_ROOM, namespace=NAMESPACE)
            self._waiting_full.add(sid)
        self._waiting.set()
        return {"mode": mode}

    async def _sync_loop(self) -> None:
        """Send queued clients their full state, all of them in one emit.

        A full state is encoded once per emit, whatever the number of
        recipients: 200 dashboards connecting at once cost one encoding of a
        multi-megabyte document, not 200. A client whose connection is not yet
        complete (its CONNECT packet not yet sent) waits for the next round, so
        the state never arrives before the namespace is open.
        """
        while True:
            await self._waiting.wait()
            await asyncio.sleep(0.02)  # let the clients connecting together arrive
            self._waiting.clear()
            try:
                await self._sync_waiting()
            except Exception:
                logger.warning("sending full states to new clients failed; retrying", exc_info=True)
                await asyncio.sleep(1.0)
                self._waiting.set()

    async def _sync_waiting(self) -> None:
        manager = self.server.manager
        # At most SYNC_BATCH clients a round, with a pause between rounds, so a
        # crowd connecting at once does not queue a multi-megabyte state for
        # every one of them in memory at the same time.
        ready_full = [sid for sid in self._waiting_full if manager.is_connected(sid, NAMESPACE)][:SYNC_BATCH]
        ready_versioned = [sid for sid in self._waiting_versioned if manager.is_connected(sid, NAMESPACE)][:SYNC_BATCH]
        if not (ready_full or ready_versioned):
            if self._waiting_full or self._waiting_versioned:
                self._waiting.set()
            return
        await self.current_state()
        async with self._emit_lock:
            if self._published is None:
                self._rebase()
            if ready_full:
                await self.server.emit(TWIN_STATE_EVENT, self._state, to=ready_full, namespace=NAMESPACE)
            if ready_versioned:
                versioned = {**(self._published or {}), "version": self._version}
                await self.server.emit(TWIN_STATE_EVENT, versioned, to=ready_versioned, namespace=NAMESPACE)
            await self._release_sent([*ready_full, *ready_versioned])
        self._waiting_full.difference_update(ready_full)
        self._waiting_versioned.difference_update(ready_versioned)
        if self._waiting_full or self._waiting_versioned:
            await asyncio.sleep(SYNC_PAUSE_SECONDS)
            self._waiting.set()

    async def _release_sent(self, sids: list[str]) -> None:
        """Queue an Engine.IO no-op behind a starting state, so the state's encoding can be freed.

        python-engineio's websocket writer keeps the last packet it sent
        referenced while it waits for the next one. Each round of starting
        states is its own multi-megabyte encoding, so every round stayed alive
        as long as its clients were idle: 200 idle clients at 10,000 hosts held
        540 MB instead of 160 (bench/analysis.md). Clients ignore no-ops.
        """
        for sid in sids:
            eio_sid = self.server.manager.eio_sid_from_sid(sid, NAMESPACE)
            if eio_sid is not None:
                await self.server.eio.send_packet(eio_sid, eio_packet.Packet(eio_packet.NOOP))

    def forget(self, sid: str) -> None:
        """A client left: nothing is owed to it any more."""
        self._waiting_full.discard(sid)
        self._waiting_versioned.discard(sid)

    async def _rebuild(self) -> TwinState:
        state = await _snapshot_call()
        self._state, self._state_built_at = state, time.monotonic()
        if self._published is None:
            self._rebase()
        return state

    def _rebase(self) -> None:
        """Make the current state the one deltas build on, under a version nobody has seen."""
        self._version += 1
        self._published = self._state

    async def _listen(self) -> None:
        """Turn change signals from the channel layer into a dirty flag.

        Receiving has its own task and is never cancelled midway: channels-redis
        loses messages when ``receive`` is interrupted.
        """
        layer = get_channel_layer()
        if layer is None:
            return
        channel = None
        joined_at: float | None = None
        while True:
            try:
                if channel is None:
                    channel = await layer.new_channel()
                if joined_at is None or time.monotonic() - joined_at > GROUP_REJOIN_SECONDS:
                    await layer.group_add(TWIN_GROUP, channel)
                    joined_at = time.monotonic()
                await layer.receive(channel)
                self._dirty.set()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("channel layer receive failed; retrying", exc_info=True)
                joined_at = None
                await asyncio.sleep(1.0)

    def _has_clients(self) -> bool:
        return next(iter(self.server.manager.get_participants(NAMESPACE, None)), None) is not None

    async def _push_loop(self) -> None:
        min_gap = 1.0 / settings.TWIN_PUSH_MAX_PER_SECOND
        last_push = 0.0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), timeout=settings.TWIN_REFRESH_SECONDS)
            if not self._has_clients():
                # Nobody to push to: no rebuild. Nobody holds a pushed state or
                # a version either, so the next clients start from the state of
                # their time, not from the last push: after a quiet spell, a
                # first delta from the old one would carry the whole twin to
                # every client at once (a gigabyte at 10,000 hosts, bench/analysis.md).
                self._published = None
                self._dirty.clear()
                continue
            gap = last_push + min_gap - time.monotonic()
            if gap > 0:
                await asyncio.sleep(gap)
            self._dirty.clear()
            try:
                state = await self._rebuild()
            except Exception:
                logger.warning("twin snapshot failed; retrying at the next interval", exc_info=True)
                continue
            async with self._emit_lock:
                assert self._published is not None
                delta = state_diff(before=self._published, after=state, version=self._version + 1)
                if delta_is_empty(delta):
                    continue
                self._version += 1
                self._published = state
                await self.server.emit(TWIN_DELTA_EVENT, delta, room=DELTA_ROOM, namespace=NAMESPACE)
                await self.server.emit(TWIN_STATE_EVENT, state, room=FULL_ROOM, namespace=NAMESPACE)
            last_push = time.monotonic()


class TwinNamespace(socketio.AsyncNamespace):
    """``/digital-twin``: a client gets ``twin-state`` at once, then after every change.

    A client that emits ``subscribe`` with ``{"mode": "delta"}`` gets one full
    ``twin-state`` carrying a ``version``, then ``twin-delta`` events; on a gap
    in versions it emits ``resync`` for a fresh full state.
    """

    def __init__(self, broadcaster: TwinBroadcaster) -> None:
        super().__init__(NAMESPACE)
        self.broadcaster = broadcaster

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        """Admit readers only (unless ``TWIN_PUBLIC_READ``): an API token in the auth payload, or a session cookie.

        Django's middleware never sees Socket.IO traffic, so this is the check.
        """
        if not settings.TWIN_PUBLIC_READ:
            token = auth.get("token") if isinstance(auth, dict) and isinstance(auth.get("token"), str) else None
            session_key = session_key_from_cookie_header(environ.get("HTTP_COOKIE", ""))
            reader = await _db_call(reader_identify, token=token, session_key=session_key)
            if reader is None:
                # Socket.IO clients see this as the connect_error's message and data.
                detail = "Send {'token': '<API token>'} as the auth payload, or log in first."
                raise socketio.exceptions.ConnectionRefusedError(
                    f"not_authenticated: {detail}", {"error": "not_authenticated", "detail": detail}
                )
        self.broadcaster.ensure_started()
        await self.enter_room(sid, FULL_ROOM)
        self.broadcaster.greet(sid)

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        self.broadcaster.forget(sid)

    async def on_subscribe(self, sid: str, data: Any = None) -> dict[str, Any]:
        """``subscribe`` ``{"mode": "delta"}`` (or ``"full"``); answered with the mode and version."""
        mode = data.get("mode") if isinstance(data, dict) else None
        if mode not in ("delta", "full"):
            return {"error": "bad_mode", "detail": "Subscribe with {'mode': 'delta'} or {'mode': 'full'}."}
        return await self.broadcaster.subscribe(sid, mode)

    async def on_resync(self, sid: str, data: Any = None) -> dict[str, Any]:
        """A delta client that missed a version asks for the full state again."""
        return await self.broadcaster.subscribe(sid, "delta")


def server_create() -> tuple[socketio.AsyncServer, TwinBroadcaster]:
    """The Socket.IO server of this process, with its namespace and broadcaster."""
    origins = settings.TWIN_SOCKETIO_ORIGINS
    server = socketio.AsyncServer(
        # Explicit: with aiohttp installed python-socketio would pick its driver.
        async_mode="asgi",
        cors_allowed_origins="*" if origins == ["*"] else origins,
        json=OrjsonForSocketIO,
    )
    broadcaster = TwinBroadcaster(server)
    server.register_namespace(TwinNamespace(broadcaster))
    return server, broadcaster
