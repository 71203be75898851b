"""The one place where the sync side tells the async side that the twin changed.

Writers call ``twin_changed_on_commit`` inside their transaction. The signal is
sent only once the transaction commits, so a listener never rebuilds from rows
that may still roll back; it carries no data, because the channel layer may
drop messages and every listener rebuilds from the database anyway.

Inside a server process the signal is handed to the event loop without
waiting, and the loop sends at most one per ``PUBLISH_GAP_SECONDS``: under
load most batches commit while a signal is already due, and a request thread
that waited for each send spent a tenth of a small batch on it (bench/analysis.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

TWIN_GROUP = "twin"
TWIN_CHANGED = "twin.changed"
# Listeners push at most a few times a second, so a signal every 50 ms per
# process is all they can use.
PUBLISH_GAP_SECONDS = 0.05


async def _group_send() -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await layer.group_send(TWIN_GROUP, {"type": TWIN_CHANGED})
    except Exception:
        # The change is committed; a lost signal costs one refresh interval,
        # so failing the request that made it would be worse.
        logger.warning("could not publish twin change; listeners will pick it up on refresh", exc_info=True)


class _LoopPublisher:
    """Coalesces this process's signals on its event loop: at most one send per gap, never one lost.

    ``request`` runs on the loop after a commit. If a send is already due, that
    send happens after this commit and carries it; otherwise one is scheduled.
    The flag is cleared before sending, so a commit during a send schedules
    another.
    """

    def __init__(self) -> None:
        self._due = False
        self._last_sent = -PUBLISH_GAP_SECONDS
        # The loop keeps only weak references to tasks: a send in flight must not be collected.
        self._sending: set[asyncio.Task[None]] = set()

    def request(self) -> None:
        if self._due:
            return
        self._due = True
        delay = max(0.0, self._last_sent + PUBLISH_GAP_SECONDS - time.monotonic())
        asyncio.get_running_loop().call_later(delay, self._send)

    def _send(self) -> None:
        self._due = False
        self._last_sent = time.monotonic()
        task = asyncio.get_running_loop().create_task(_group_send())
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)


_publishers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopPublisher] = weakref.WeakKeyDictionary()


def _server_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop that runs this sync code's request, if it runs under one (ASGI)."""
    loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    if loop is None or loop.is_closed() or not loop.is_running():
        return None
    return loop


def twin_changed_publish() -> None:
    """Tell every server process that the twin changed (at most once delivery)."""
    loop = _server_loop()
    if loop is None:
        # A management command or a test without a server: send it now.
        async_to_sync(_group_send)()
        return
    publisher = _publishers.get(loop)
    if publisher is None:
        publisher = _publishers.setdefault(loop, _LoopPublisher())
    loop.call_soon_threadsafe(publisher.request)


def twin_changed_on_commit() -> None:
    """Publish a twin change once the current transaction commits."""
    transaction.on_commit(twin_changed_publish)
