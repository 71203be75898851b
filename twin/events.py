"""The one place where the sync side tells the async side that the twin changed.

Writers call ``twin_changed_on_commit`` inside their transaction. The signal is
sent only once the transaction commits, so a listener never rebuilds from rows
that may still roll back; it carries no data, because the channel layer may
drop messages and every listener rebuilds from the database anyway.
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

TWIN_GROUP = "twin"
TWIN_CHANGED = "twin.changed"


def twin_changed_publish() -> None:
    """Tell every server process that the twin changed (at most once delivery)."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(TWIN_GROUP, {"type": TWIN_CHANGED})
    except Exception:
        # The change is committed; a lost signal costs one refresh interval,
        # so failing the request that made it would be worse.
        logger.warning("could not publish twin change; listeners will pick it up on refresh", exc_info=True)


def twin_changed_on_commit() -> None:
    """Publish a twin change once the current transaction commits."""
    transaction.on_commit(twin_changed_publish)
