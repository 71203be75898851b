"""The live side: Socket.IO on ``/digital-twin``, fed by events from every server process.

Its parts, each in its own module:
- ``listener``: events off the Channels layer (``common.events`` publishes them);
- ``dispatch``: routes each event by type and audience;
- ``feed``: rebuilds, versions and diffs the twin, and decides when to push;
- ``emitter``: everything sent over Socket.IO;
- ``namespace``: who may connect and what clients may ask;
- ``guard``: disconnects readers whose credentials were revoked;
- ``transport``: what clients may send on the transport (packet limits and shapes);
- ``calls``: the feed's own thread for rebuilds (other sync calls go through
  ``common.asyncsync``).

``LiveSide.on_running_loop`` makes and wires these once for an event loop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import socketio
from django.conf import settings
from django.http.request import split_domain_port, validate_host

from common.asyncsync import serving_loop_record
from twin.live.calls import snapshot_call
from twin.live.dispatch import EventDispatcher
from twin.live.emitter import SocketEmitter
from twin.live.feed import TwinFeed
from twin.live.guard import ReaderGuard
from twin.live.listener import events_listen
from twin.live.namespace import TwinNamespace
from twin.live.transport import TwinPacket, engineio_limits_apply
from twin.socketio_json import OrjsonForSocketIO


@dataclass(frozen=True)
class LiveSide:
    """The live side on one event loop: its emitter, feed and dispatcher, wired once, and their tasks.

    Everything here belongs to the loop it was made on (asyncio locks, events
    and tasks cannot move to another), so a new loop gets a new one
    (``on_running_loop``). The guard is the process's: the readers it admitted
    stay known whatever loop checks them.
    """

    loop: asyncio.AbstractEventLoop
    emitter: SocketEmitter
    feed: TwinFeed
    dispatcher: EventDispatcher
    guard: ReaderGuard
    tasks: tuple[asyncio.Task[None], ...]

    @classmethod
    def on_running_loop(cls, server: socketio.AsyncServer, *, guard: ReaderGuard) -> LiveSide:
        """Make the live side for the running loop and start its tasks.

        1. Record the loop as the one this process serves on: request and job
           threads hand their events to it (``common.events``).
        2. Make the emitter, the feed pushing through it, and the dispatcher
           routing events to both.
        3. Start the listener (into the dispatcher), the feed's loop, the
           starting-state sender (from the feed) and the guard's checks.
        """
        loop = asyncio.get_running_loop()
        serving_loop_record(loop)
        emitter = SocketEmitter(server)
        feed = TwinFeed(
            build=snapshot_call,
            output=emitter,
            min_gap=1.0 / settings.TWIN_PUSH_MAX_PER_SECOND,
            refresh_seconds=settings.TWIN_REFRESH_SECONDS,
        )
        dispatcher = EventDispatcher(feed=feed, emitter=emitter)
        tasks = (
            loop.create_task(events_listen(dispatcher.deliver_all)),
            loop.create_task(feed.run()),
            loop.create_task(emitter.sync_loop(feed)),
            loop.create_task(guard.run()),
        )
        return cls(loop=loop, emitter=emitter, feed=feed, dispatcher=dispatcher, guard=guard, tasks=tasks)

    def running_on(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Whether this is the live side of ``loop`` and all its tasks still run."""
        return self.loop is loop and all(not task.done() for task in self.tasks)

    def stop(self) -> None:
        """Cancel whatever of its tasks still runs (a task of it ended: a new side takes over)."""
        for task in self.tasks:
            task.cancel()


class TwinLive:
    """This process's live side: the Socket.IO server, the reader guard, and the ``LiveSide`` of its loop."""

    def __init__(self, server: socketio.AsyncServer) -> None:
        self.server = server
        self.guard = ReaderGuard(server, interval=settings.TWIN_READER_RECHECK_SECONDS)
        self._side: LiveSide | None = None

    def ensure_started(self) -> LiveSide:
        """The live side of the running loop, made and started on the first call from that loop.

        daphne sends no lifespan events, so the ASGI app calls this on every
        request and connection; after the first, it is one comparison.
        """
        side = self._side
        loop = asyncio.get_running_loop()
        if side is not None and side.running_on(loop):
            return side
        if side is not None and side.loop is loop:
            side.stop()
        self._side = side = LiveSide.on_running_loop(self.server, guard=self.guard)
        return side


def origin_allowed(origin: str | None, environ: dict[str, Any]) -> bool:
    """May a browser page from ``origin`` open a Socket.IO connection?

    The twin's own pages always may, on whatever host and port it is served
    (the Origin is the scheme and Host of the request itself, a host in
    ``ALLOWED_HOSTS``; behind a proxy that sets X-Forwarded-Proto, with that
    scheme), and so may the configured origins (``TWIN_ALLOWED_ORIGINS``, ``*``
    for any). Clients that are not browsers send no Origin and
    are not checked here: they authenticate in the connect handler.
    """
    if origin is None:
        return True
    configured = settings.TWIN_ALLOWED_ORIGINS
    if "*" in configured or origin in configured:
        return True
    host = environ.get("HTTP_HOST")
    # Socket.IO bypasses Django's own Host check: without this one, a page on a
    # name that resolves to the twin (DNS rebinding) would count as the twin's own.
    if not host or not validate_host(split_domain_port(host)[0], settings.ALLOWED_HOSTS):
        return False
    schemes = {environ.get("wsgi.url_scheme", "http")}
    if settings.SECURE_PROXY_SSL_HEADER and environ.get("HTTP_X_FORWARDED_PROTO"):
        schemes.add(environ["HTTP_X_FORWARDED_PROTO"].split(",")[0].strip())
    return origin in {f"{scheme}://{host}" for scheme in schemes}


def server_create() -> tuple[socketio.AsyncServer, TwinLive]:
    """The Socket.IO server of this process, with its namespace and live side."""
    engineio_limits_apply()
    server = socketio.AsyncServer(
        # Explicit: with aiohttp installed python-socketio would pick its driver.
        async_mode="asgi",
        cors_allowed_origins=origin_allowed,
        json=OrjsonForSocketIO,
        serializer=TwinPacket,
    )
    live = TwinLive(server)
    server.register_namespace(TwinNamespace(live))
    return server, live
