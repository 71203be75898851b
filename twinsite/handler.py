"""Django's ASGI handler with one thread hop per request to a sync view, instead of one per middleware method.

Under ASGI, Django runs its middleware chain on the event loop. Each of
Django's own middlewares (sessions, CSRF, auth, messages, security, common,
clickjacking) is a ``MiddlewareMixin`` whose ``process_request`` and
``process_response`` are then each run in a thread through ``sync_to_async``,
and the sync view in one more: about fifteen hand-offs between the loop and a
thread for every request, which profiles showed to be most of the time a
trivial request costs (bench/analysis.md, issue 16).

Here a request for a sync view (every API view, the admin, 404s) runs the whole
chain, view included, in that thread in one hop: the same middlewares in the
same order, each doing what it does under WSGI. A request for an async view
(the ops probes, the long poll through Django) or a static file (served on the
loop, ``twinsite.middleware``) keeps Django's async chain.

Django also gives each request a ``ThreadSensitiveContext`` of its own, whose
executor starts a thread for the request and joins it at the end (about a
sixth of a signed one-sample batch's time in the event loop and request
threads, py-spy). Here each request gets a single-thread executor from a small
pool instead (asgiref's ``ThreadSensitiveContext(executor=...)``): the same
isolation, one request per thread at a time, its database connection handed
back at the end as before, without starting a thread per request.
"""

from __future__ import annotations

import threading
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache
from typing import Any

from asgiref.sync import ThreadSensitiveContext, iscoroutinefunction, sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler
from django.http import HttpRequest, HttpResponseBase
from django.urls import Resolver404, get_resolver


@lru_cache(maxsize=1024)
def _path_wants_loop(path_info: str) -> bool:
    """True when the path's view is a coroutine (or a static file the loop serves).

    Cached per path, bounded: a path resolves to the same view for the life of
    the process, and resolving costs about as much as a hop saves.
    """
    if path_info.startswith("/" + settings.STATIC_URL.lstrip("/")):
        return True
    try:
        match = get_resolver().resolve(path_info)
    except Resolver404:
        return False
    # Django marks an async view (and ``as_view()`` of a class with async handlers) as a coroutine function.
    return iscoroutinefunction(match.func)


# Idle request threads kept for the next requests; a burst beyond this starts threads that end with it.
IDLE_REQUEST_THREADS = 64


class _RequestThread(ThreadPoolExecutor):
    """One thread serving one request at a time; knows whether a call is still running on it."""

    # Every request thread alive, for the stop to wait for the busy ones (``requests_in_flight``).
    alive: weakref.WeakSet[_RequestThread] = weakref.WeakSet()

    def __init__(self) -> None:
        super().__init__(max_workers=1, thread_name_prefix="request")
        self._lock = threading.Lock()
        self._pending = 0
        _RequestThread.alive.add(self)

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future:
        with self._lock:
            self._pending += 1
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(self._done)
        return future

    def _done(self, future: Future) -> None:
        with self._lock:
            self._pending -= 1

    @property
    def idle(self) -> bool:
        with self._lock:
            return self._pending == 0


def requests_in_flight() -> int:
    """Sync views still running on request threads (the server's stop waits for them, bounded)."""
    return sum(not thread.idle for thread in list(_RequestThread.alive))


class OneHopASGIHandler(ASGIHandler):
    """``get_asgi_application()``'s handler, serving sync views with one hop on a pooled thread (module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self._idle_threads: list[_RequestThread] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        executor = self._idle_threads.pop() if self._idle_threads else _RequestThread()
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            # A request abandoned by its client may leave its view still running:
            # that thread finishes it and ends instead of serving the next request.
            if executor.idle and len(self._idle_threads) < IDLE_REQUEST_THREADS:
                self._idle_threads.append(executor)
            else:
                executor.shutdown(wait=False)

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=is_async)
        # The same MIDDLEWARE, chained for a thread: what a WSGI server would run.
        self._sync_handler = BaseHandler()
        self._sync_handler.load_middleware(is_async=False)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        if _path_wants_loop(request.path_info):
            return await super().get_response_async(request)
        # thread_sensitive: inside the request's ThreadSensitiveContext (ASGIHandler.handle),
        # the thread this request's database work would have used anyway.
        return await sync_to_async(self._sync_handler.get_response, thread_sensitive=True)(request)


def one_hop_asgi_application() -> OneHopASGIHandler:
    """``django.core.asgi.get_asgi_application`` with the one-hop handler."""
    import django

    django.setup(set_prefix=False)
    return OneHopASGIHandler()
