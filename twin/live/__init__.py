"""The live side: Socket.IO on ``/digital-twin``, fed by events from every server process.

Its parts, each in its own module:
- ``listener``: events off the Channels layer (``common.events`` publishes them);
- ``dispatch``: routes each event by type and audience;
- ``feed``: rebuilds, versions and diffs the twin, and decides when to push;
- ``emitter``: everything sent over Socket.IO;
- ``namespace``: who may connect and what clients may ask;
- ``guard``: disconnects readers whose credentials were revoked;
- ``transport``: what clients may send on the transport (packet limits and shapes);
- ``calls``: how this async side runs whole sync functions.
"""

from __future__ import annotations

import asyncio
from typing import Any

import socketio
from django.conf import settings
from django.http.request import split_domain_port, validate_host

from twin.live.calls import snapshot_call
from twin.live.dispatch import EventDispatcher
from twin.live.emitter import SocketEmitter
from twin.live.feed import TwinFeed
from twin.live.guard import ReaderGuard
from twin.live.listener import events_listen
from twin.live.namespace import TwinNamespace
from twin.live.transport import TwinPacket, engineio_limits_apply
from twin.socketio_json import OrjsonForSocketIO


class TwinLive:
    """This process's live side: the Socket.IO server and the tasks that feed it."""

    def __init__(self, server: socketio.AsyncServer) -> None:
        self.server = server
        self.emitter = SocketEmitter(server)
        self.feed = self._feed_create()
        self.dispatcher = EventDispatcher(feed=self.feed, emitter=self.emitter)
        self.guard = ReaderGuard(server, interval=settings.TWIN_READER_RECHECK_SECONDS)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def ensure_started(self) -> None:
        """Start the listener, the feed, the starting-state sender and the guard once per process and event loop.

        daphne sends no lifespan events, so the ASGI app calls this on every
        request and connection; after the first, it is one comparison.
        """
        loop = asyncio.get_running_loop()
        if self._loop is loop and all(not t.done() for t in self._tasks):
            return
        self._loop = loop
        self.emitter.reset_loop_state()
        self.feed = self.dispatcher.feed = self._feed_create()
        self._tasks = [
            loop.create_task(events_listen(self.dispatcher.deliver_all)),
            loop.create_task(self.feed.run()),
            loop.create_task(self.emitter.sync_loop()),
            loop.create_task(self.guard.run()),
        ]

    def _feed_create(self) -> TwinFeed:
        feed = TwinFeed(
            build=snapshot_call,
            output=self.emitter,
            min_gap=1.0 / settings.TWIN_PUSH_MAX_PER_SECOND,
            refresh_seconds=settings.TWIN_REFRESH_SECONDS,
        )
        self.emitter.feed = feed
        return feed


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
