"""The feed's own thread: ``snapshot_build`` on a thread and connection of its own.

Every other sync call of the live side (reader checks) goes through
``common.asyncsync.db_call``, on a worker thread whose connection is given back
at once; the feed's rebuilds are the one exception, because they run several
times a second and must never wait for a connection.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

from django.db import connection

from twin.instruments import snapshot_observe
from twin.snapshot import TwinState, gc_paused, snapshot_build

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
            # The build for readers holds the collector off (twin.snapshot.gc_paused says why).
            with gc_paused():
                state = snapshot_build()
            return snapshot_observe(state, started=started, reader="live")
        except Exception:
            # A failed statement may have left the connection broken; the next
            # rebuild starts on a fresh one.
            connection.close()
            raise

    return await asyncio.get_running_loop().run_in_executor(_snapshot_thread, call)
