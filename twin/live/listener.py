"""The listener: events from every server process, off the Channels layer, into the dispatcher.

Its channel joins the events group, and keeps joining it (``membership_keep``):
a Redis that restarts forgets every group, and the layer's client reconnects
by itself (redis-py retries the blocking pop), so the listener itself sees no
error and would stay deaf to the other processes until the next refresh
(issue 24). Joining again is idempotent (a sorted-set add), so the membership
is renewed every ``GROUP_RENEW_SECONDS``; a renewal that finds it gone says
so in the log and in ``twin_channel_layer_rejoins_total``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from channels.layers import BaseChannelLayer, get_channel_layer

from common.events import EVENTS_GROUP, EVENTS_MESSAGE, Event
from twin.live.instruments import channel_lag_observe, channel_rejoin_record

logger = logging.getLogger(__name__)

# How often the listener joins its group again: the longest a restarted Redis
# keeps a process deaf to the others (plus Redis' own return).
GROUP_RENEW_SECONDS = 2.0
# After a failed receive (Redis away), the next one waits this long.
RECEIVE_RETRY_SECONDS = 1.0
# After a failed renewal, the next one comes sooner: the first command after Redis'
# return may still meet a pooled connection to the old one, and fail.
GROUP_RETRY_SECONDS = 0.5


@dataclass
class ListenerState:
    """This process's listener as ``/readyz`` reads it: None until one runs, then whether it is in its group."""

    in_group: bool | None = None
    detail: str = ""


LISTENER = ListenerState()


async def group_membership_renew(layer: BaseChannelLayer, group: str, channel: str) -> bool:
    """Add ``channel`` to ``group`` (again); True if the layer had lost the membership.

    channels-redis offers no "is it a member" call: the look goes through its
    connection and group key, the two internals this needs (upstream would
    have to return ``ZADD``'s count from ``group_add``). Another layer (in
    memory, in one process) never loses a group, and is only joined again.
    """
    connection_for = getattr(layer, "connection", None)
    group_key = getattr(layer, "_group_key", None)
    consistent_hash = getattr(layer, "consistent_hash", None)
    lost = False
    if callable(connection_for) and callable(group_key) and callable(consistent_hash):
        connection: Any = connection_for(consistent_hash(group))
        lost = await connection.zscore(group_key(group), channel) is None
    await layer.group_add(group, channel)
    return lost


async def membership_keep(layer: BaseChannelLayer, channel: str, *, every: float = GROUP_RENEW_SECONDS) -> None:
    """Keep ``channel`` in the events group forever: renew it every ``every`` seconds, log and count a rejoin.

    A failure (Redis away) is logged once until a renewal goes through again,
    and retried every ``GROUP_RETRY_SECONDS`` meanwhile.
    """
    joined = failing = False
    while True:
        try:
            lost = await group_membership_renew(layer, EVENTS_GROUP, channel)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            LISTENER.in_group = False
            LISTENER.detail = f"the events listener cannot join its group ({type(exc).__name__})"
            if not failing:
                logger.warning("the events listener cannot join its channel-layer group; retrying", exc_info=True)
            failing = True
        else:
            if lost and joined:
                channel_rejoin_record()
                logger.warning(
                    "the channel layer had lost this process's events-group membership (Redis restarted?): "
                    "rejoined; events from other processes flow again"
                )
            elif failing:
                logger.info("the events listener is in its channel-layer group again")
            joined, failing = True, False
            LISTENER.in_group, LISTENER.detail = True, ""
        await asyncio.sleep(min(every, GROUP_RETRY_SECONDS) if failing else every)


async def events_listen(deliver: Callable[[list[Event]], Awaitable[None]]) -> None:
    """Receive event messages forever and deliver each message's events, in order.

    Receiving has its own task and is never cancelled midway: channels-redis
    loses messages when ``receive`` is interrupted. The group membership is
    kept by a task of its own (``membership_keep``), since a receive that waits
    for a message cannot notice that the group forgot it.
    """
    layer = get_channel_layer()
    if layer is None:
        return
    channel = await layer.new_channel()
    keeper = asyncio.create_task(membership_keep(layer, channel))
    failing = False
    try:
        while True:
            try:
                message = await layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Once per outage: Redis away fails a receive every second.
                if not failing:
                    logger.warning("channel layer receive failed; retrying", exc_info=True)
                failing = True
                await asyncio.sleep(RECEIVE_RETRY_SECONDS)
                continue
            failing = False
            if message.get("type") != EVENTS_MESSAGE:
                continue
            channel_lag_observe(message)
            await deliver(message.get("events", []))
    finally:
        keeper.cancel()
