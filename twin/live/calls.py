"""How the async side runs sync code: whole sync functions on worker threads, on good connections."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections, connection

from twin.instruments import snapshot_observe
from twin.snapshot import TwinState, snapshot_build

T = TypeVar("T")


async def db_call(fn: Callable[..., T], /, **kwargs: Any) -> T:
    """Run a whole sync database function on a worker thread, on a connection that is still good.

    Off the thread-sensitive executor, so a slow call never queues behind (or
    holds up) Django's request handling.
    """

    def call() -> T:
        close_old_connections()
        try:
            return fn(**kwargs)
        finally:
            close_old_connections()

    return await sync_to_async(call, thread_sensitive=False)()


# The feed's own thread, which keeps its pooled connection between rebuilds:
# under overload a rebuild that queued for a connection behind the agents'
# requests left dashboards seconds behind (docs/reliability.md).
_snapshot_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="twin-snapshot")


async def snapshot_call() -> TwinState:
    """``snapshot_build`` on the feed's thread and connection, replaced when no longer usable."""

    def call() -> TwinState:
        if connection.connection is not None and not connection.is_usable():
            connection.close()
        try:
            started = time.perf_counter()
            return snapshot_observe(snapshot_build(), started=started, reader="live")
        except Exception:
            # A failed statement may have left the connection broken; the next
            # rebuild starts on a fresh one.
            connection.close()
            raise

    return await asyncio.get_running_loop().run_in_executor(_snapshot_thread, call)
