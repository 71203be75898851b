"""The listener: events from every server process, off the Channels layer, into the dispatcher."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from channels.layers import get_channel_layer

from common.events import EVENTS_GROUP, EVENTS_MESSAGE, Event
from twin.live.instruments import channel_lag_observe

logger = logging.getLogger(__name__)

# Channels' default group expiry is a day; joining again hourly keeps a
# long-lived listener in the group.
GROUP_REJOIN_SECONDS = 3600.0


async def events_listen(deliver: Callable[[list[Event]], Awaitable[None]]) -> None:
    """Receive event messages forever and deliver each message's events, in order.

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
                await layer.group_add(EVENTS_GROUP, channel)
                joined_at = time.monotonic()
            message = await layer.receive(channel)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.warning("channel layer receive failed; retrying", exc_info=True)
            joined_at = None
            await asyncio.sleep(1.0)
            continue
        if message.get("type") != EVENTS_MESSAGE:
            continue
        channel_lag_observe(message)
        await deliver(message.get("events", []))
