"""The emitters: everything this process sends on ``/digital-twin``.

Pushes of the feed go to rooms (full-state listeners, delta listeners), starting
states to clients that just connected or subscribed, and routed events to their
audience's room. python-socketio's ``emit`` is not meant to be called
concurrently, so every emit here takes one lock.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import socketio
from engineio import packet as eio_packet

from common.errors import database_trouble
from twin.delta import TwinDelta
from twin.live import instruments
from twin.live.feed import TwinFeed
from twin.snapshot import TwinState

logger = logging.getLogger(__name__)

NAMESPACE = "/digital-twin"
TWIN_STATE_EVENT = "twin-state"
TWIN_DELTA_EVENT = "twin-delta"
# Rooms: clients receive full states unless they subscribed to deltas. Readers
# are also in the rooms of the events their permissions read (twin.audiences).
FULL_ROOM = "full"
DELTA_ROOM = "delta"
# Delta subscribers of the fields form (only the keys that changed): a room of
# their own, so that each form is encoded once for all its subscribers.
FIELDS_ROOM = "delta-fields"
# New clients get their first full state in rounds of this many, this far apart.
SYNC_BATCH = 5
SYNC_PAUSE_SECONDS = 0.1


async def engineio_release_sent_frame(server: socketio.AsyncServer, sid: str) -> None:
    """Queue an Engine.IO no-op behind the last frame sent to ``sid``, so that frame can be freed.

    python-engineio's websocket writer keeps the last packet it sent referenced
    while it waits for the next one (an implementation detail, not an API).
    Each round of starting states is its own multi-megabyte encoding, so every
    round stayed alive as long as its clients were idle: 200 idle clients at
    10,000 hosts held 540 MB instead of 160 (bench/analysis.md). Clients ignore
    no-ops. Upstream would need to drop the reference once a frame is written
    (or offer a "flush" call) for this to go.
    """
    eio_sid = server.manager.eio_sid_from_sid(sid, NAMESPACE)
    if eio_sid is not None:
        await server.eio.send_packet(eio_sid, eio_packet.Packet(eio_packet.NOOP))


class SocketEmitter:
    """Sends the feed's pushes, starting states and routed events over Socket.IO.

    Made for one event loop (its lock and event belong to it), by the live
    side's constructor (``twin.live.LiveSide.on_running_loop``).
    """

    def __init__(self, server: socketio.AsyncServer) -> None:
        self.server = server
        self._emit_lock = asyncio.Lock()
        # Clients owed a starting state: the freshest, or the last pushed with its version.
        self._waiting_full: set[str] = set()
        self._waiting_versioned: set[str] = set()
        self._waiting = asyncio.Event()

    # --- FeedOutput ---------------------------------------------------------------

    def has_listeners(self) -> bool:
        return next(iter(self.server.manager.get_participants(NAMESPACE, None)), None) is not None

    async def push(
        self, *, state: TwinState | None, delta: TwinDelta | None, field_delta: TwinDelta | None = None
    ) -> None:
        # python-socketio encodes a packet once per emit, before looking for
        # recipients: a 10,000-host state for an empty room cost 20-30 ms of
        # the loop per push, so an empty room is not emitted to.
        async with self._emit_lock:
            delta_to = self._room_size(DELTA_ROOM) if delta is not None else 0
            fields_to = self._room_size(FIELDS_ROOM) if field_delta is not None else 0
            state_to = self._room_size(FULL_ROOM) if state is not None else 0
            if fields_to:
                await self.server.emit(TWIN_DELTA_EVENT, field_delta, room=FIELDS_ROOM, namespace=NAMESPACE)
            if delta_to:
                await self.server.emit(TWIN_DELTA_EVENT, delta, room=DELTA_ROOM, namespace=NAMESPACE)
            if state_to:
                await self.server.emit(TWIN_STATE_EVENT, state, room=FULL_ROOM, namespace=NAMESPACE)
            instruments.push_record(
                state_event=TWIN_STATE_EVENT,
                state_to=state_to,
                delta_event=TWIN_DELTA_EVENT,
                delta_to=delta_to + fields_to,
            )

    # --- routed events ----------------------------------------------------------------

    async def to_room(self, event: str, payload: Any, *, room: str | None) -> None:
        """Emit ``event`` to a room (``None``: every client of the namespace)."""
        async with self._emit_lock:
            await self.server.emit(event, payload, room=room, namespace=NAMESPACE)
            instruments.sent_record(event, self._room_size(room))

    # --- clients joining ------------------------------------------------------------

    def greet(self, sid: str) -> None:
        """Queue the current state for a client that just connected."""
        self._waiting_full.add(sid)
        self._waiting.set()
        self._clients_observe()

    async def subscribe(self, sid: str, mode: str, *, fields: bool = False) -> dict[str, Any]:
        """Switch a client between full states and deltas (whole or fields), and queue the state it starts from.

        A delta subscriber's starting state is the state last pushed, with the
        ``version`` the next delta builds on.
        """
        if mode == "delta":
            joined, left = (FIELDS_ROOM, DELTA_ROOM) if fields else (DELTA_ROOM, FIELDS_ROOM)
            await self.server.leave_room(sid, FULL_ROOM, namespace=NAMESPACE)
            await self.server.leave_room(sid, left, namespace=NAMESPACE)
            await self.server.enter_room(sid, joined, namespace=NAMESPACE)
            # A client subscribing right after connecting needs one state, not two.
            self._waiting_full.discard(sid)
            self._waiting_versioned.add(sid)
        else:
            await self.server.leave_room(sid, DELTA_ROOM, namespace=NAMESPACE)
            await self.server.leave_room(sid, FIELDS_ROOM, namespace=NAMESPACE)
            await self.server.enter_room(sid, FULL_ROOM, namespace=NAMESPACE)
            self._waiting_full.add(sid)
        self._waiting.set()
        self._clients_observe()
        return {"mode": mode, "fields": True} if mode == "delta" and fields else {"mode": mode}

    async def resync(self, sid: str) -> dict[str, Any]:
        """Queue a fresh versioned state for a delta client, in the form it subscribed to (whole if none)."""
        fields = sid in self.server.manager.rooms.get(NAMESPACE, {}).get(FIELDS_ROOM, ())
        return await self.subscribe(sid, "delta", fields=fields)

    def forget(self, sid: str) -> None:
        """A client left: nothing is owed to it any more."""
        self._waiting_full.discard(sid)
        self._waiting_versioned.discard(sid)
        self._clients_observe(leaving=sid)

    # --- measures (twin.live.instruments) ---------------------------------------------

    def _room_size(self, room: str | None) -> int:
        """Clients in ``room`` of the namespace (``None``: every client)."""
        return len(self.server.manager.rooms.get(NAMESPACE, {}).get(room, ()))

    def _clients_observe(self, leaving: str | None = None) -> None:
        rooms = self.server.manager.rooms.get(NAMESPACE, {})
        instruments.clients_observe(rooms, full=FULL_ROOM, delta=(DELTA_ROOM, FIELDS_ROOM), leaving=leaving)

    async def sync_loop(self, feed: TwinFeed) -> None:
        """Send queued clients their starting state from ``feed``, many clients to one emit.

        A state is encoded once per emit, whatever the number of recipients:
        200 dashboards connecting at once cost a few encodings of a
        multi-megabyte document, not 200. A client whose connection is not yet
        complete (its CONNECT packet not yet sent) waits for the next round, so
        the state never arrives before the namespace is open.
        """
        while True:
            await self._waiting.wait()
            await asyncio.sleep(0.02)  # let the clients connecting together arrive
            self._waiting.clear()
            try:
                await self._sync_waiting(feed)
            except Exception as exc:
                logger.warning(
                    "sending starting states to new clients failed; retrying: %s",
                    exc,
                    exc_info=not database_trouble(exc),
                )
                await asyncio.sleep(1.0)
                self._waiting.set()

    async def _sync_waiting(self, feed: TwinFeed) -> None:
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
        current = await feed.current()
        async with feed.push_lock:
            versioned = await feed.versioned() if ready_versioned else None
            async with self._emit_lock:
                if ready_full:
                    await self.server.emit(TWIN_STATE_EVENT, current, to=ready_full, namespace=NAMESPACE)
                    instruments.sent_record(TWIN_STATE_EVENT, len(ready_full))
                if versioned is not None:
                    await self.server.emit(TWIN_STATE_EVENT, versioned, to=ready_versioned, namespace=NAMESPACE)
                    instruments.sent_record(TWIN_STATE_EVENT, len(ready_versioned))
                for sid in [*ready_full, *ready_versioned]:
                    await engineio_release_sent_frame(self.server, sid)
        self._waiting_full.difference_update(ready_full)
        self._waiting_versioned.difference_update(ready_versioned)
        if self._waiting_full or self._waiting_versioned:
            await asyncio.sleep(SYNC_PAUSE_SECONDS)
            self._waiting.set()
