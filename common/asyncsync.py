"""The one place where async code calls sync code, and sync code reaches the event loop.

The sync side (ORM, services, selectors, the snapshot) knows nothing of the
event loop; the async side (the live side, the agents' long poll) runs *whole*
sync functions, never a query at a time. Each way of doing it has its own
function here, because each exists for a reason of its own:

- ``db_call``: a sync database function on a worker thread, off the
  thread-sensitive executor, on a connection that is good before and given back
  after. For the async side outside any request: the live side's reader checks,
  the long poll under daphne (which no Django request wraps: a thread held for
  each of 1,000 waiting agents is what it avoids).
- ``request_call``: a sync function inside the current request's own
  thread-sensitive context, so it runs on the thread, and with the database
  connection, that a sync view of the same request would use (under Django's
  test client that is the test's own transaction).
- ``coroutine_run``: from sync code that no event loop awaits (a job thread, a
  management command, a shell), a coroutine function run to its end.
- ``serving_loop_record`` / ``serving_loop``: the event loop this process serves
  on, recorded once where the live side starts on it, so that sync code (a
  request thread, a job thread) can hand work to it (``common.events``).

Only this module imports ``asgiref.sync`` among the apps (a contract in
``pyproject.toml``); the project's wiring (``twinsite``) has its own needs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from asgiref.sync import async_to_sync, sync_to_async
from django.db import close_old_connections

T = TypeVar("T")


async def db_call(fn: Callable[..., T], /, **kwargs: Any) -> T:
    """Run a whole sync database function on a worker thread, on a connection that is still good.

    Off the thread-sensitive executor, so a slow call never queues behind (or
    holds up) Django's request handling, and its connection is given back at
    once: nothing is held between two calls (a long poll waits between looks).
    """

    def call() -> T:
        close_old_connections()
        try:
            return fn(**kwargs)
        finally:
            close_old_connections()

    return await sync_to_async(call, thread_sensitive=False)()


async def request_call(fn: Callable[..., T], /, **kwargs: Any) -> T:
    """Run a sync function from an async view inside its request's thread-sensitive context.

    The same thread and connection as any sync view of the request: through
    Django's test client the test's transaction, under WSGI the request's thread.
    """
    return await sync_to_async(fn, thread_sensitive=True)(**kwargs)


def coroutine_run(fn: Callable[..., Awaitable[T]], /, *args: Any) -> T:
    """Run a coroutine function to its end from sync code that no event loop awaits (a job, a command)."""
    return async_to_sync(fn)(*args)


_serving: asyncio.AbstractEventLoop | None = None


def serving_loop_record(loop: asyncio.AbstractEventLoop) -> None:
    """Remember ``loop`` as the one this process serves on (called where the live side starts on it).

    Sync code asks ``serving_loop`` for it. asgiref keeps the loop that awaits a
    thread's sync code only in a private attribute (``SyncToAsync.threadlocal``);
    a server process has one serving loop, so the project records it itself
    instead. A later loop (tests start several) replaces an earlier one.
    """
    global _serving
    _serving = loop


def serving_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop this process serves on, while it runs; None outside a server (or after it stopped)."""
    loop = _serving
    if loop is None or loop.is_closed() or not loop.is_running():
        return None
    return loop


def serving_loop_stopped() -> bool:
    """Whether this process served on a loop that has stopped but is not closed (a server on its way out).

    Sync code must not hand work to asgiref then: in a thread that loop started,
    ``async_to_sync`` schedules the coroutine on that loop and waits for a
    result that never comes (a request thread finishing after daphne stopped).
    """
    loop = _serving
    return loop is not None and not loop.is_closed() and not loop.is_running()
