"""The dispatcher: routes each event to what handles it in this process, by type and audience.

- hosts changed: the twin feed rebuilds (and pushes ``twin-state``/``twin-delta``);
- events with a Socket.IO name (``SOCKET_EVENTS``: ``host-status``,
  ``command-update``, ``alert-update``): emitted to the readers who
  may read the same over REST (``twin.audiences``: every reader, or the room
  of those holding the event's permission);
- events for one host's agent: wake that host's long polls in this process
  (``commands.waiters.agent_events_deliver``).

Host-status changes come one event per host, and a rack losing power or a
network cut changes thousands at once (the status recorder commits them in one
transaction, so they arrive in one message). Emitted one by one, 10,000 of them
to 200 readers were two million frames, and every live push waited behind them.
Beyond ``HOST_STATUS_BURST_MAX`` in one message they go out as one summary
event (docs/api.md, "Every event on /digital-twin"); the twin-state and deltas
carry each host's new status anyway.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable

from commands.waiters import agent_events_deliver
from common.events import Audience, Event, EventType
from twin.audiences import NoAudience, event_room
from twin.live.emitter import SocketEmitter
from twin.live.feed import TwinFeed

logger = logging.getLogger(__name__)

# The Socket.IO event each typed event is pushed as on /digital-twin (docs/api.md).
SOCKET_EVENTS: dict[str, str] = {
    EventType.HOST_STATUS: "host-status",
    EventType.COMMAND_UPDATED: "command-update",
    EventType.ALERT_UPDATED: "alert-update",
}
# The audiences of events that Socket.IO clients may receive; who among them, twin.audiences decides.
CLIENT_AUDIENCES = frozenset({Audience.READERS, Audience.STAFF})
# Host-status changes in one message beyond which readers get one summary instead of each.
HOST_STATUS_BURST_MAX = 100


# Event types that come in bursts (thousands in one message), each condensed beyond its limit: the
# status recorder's host changes, and the alerts the same failure opens and fires on every host it reaches.
BURST_TYPES: tuple[str, ...] = (EventType.HOST_STATUS, EventType.ALERT_UPDATED)
ALERT_UPDATE_BURST_MAX = 100
BURST_MAX: dict[str, int] = {
    EventType.HOST_STATUS: HOST_STATUS_BURST_MAX,
    EventType.ALERT_UPDATED: ALERT_UPDATE_BURST_MAX,
}


def host_status_bursts_condense(events: list[Event]) -> list[Event]:
    """``events`` with each burst type's events (``BURST_TYPES``) replaced by one summary when there are too many.

    The summary takes the place of the first of them, so the order of the
    message's other events is kept: ``{"burst": true, "count", "at", "counts"}``,
    ``at`` the latest change's time and ``counts`` the events per new state
    (a host's status; an alert's ``to``). A client reads the facts again
    (``GET /api/alerts``, the twin-state carries each host's status anyway).
    """
    for kind in BURST_TYPES:
        events = _burst_condense(events, kind, BURST_MAX[kind])
    return events


def _burst_condense(events: list[Event], kind: str, limit: int) -> list[Event]:
    changes = [event for event in events if event["type"] == kind]
    if len(changes) <= limit:
        return events
    payloads = [event["payload"] for event in changes]
    summary: Event = {
        "type": kind,
        "audience": changes[0]["audience"],
        "payload": {
            "burst": True,
            "count": len(payloads),
            "at": max(str(payload.get("at", "")) for payload in payloads),
            "counts": dict(Counter(str(payload.get("to")) for payload in payloads)),
        },
    }
    condensed: list[Event] = []
    for event in events:
        if event["type"] != kind:
            condensed.append(event)
        elif event is changes[0]:
            condensed.append(summary)
    return condensed


class EventDispatcher:
    """Hands events to the feed, the emitter or waiting agents."""

    def __init__(self, *, feed: TwinFeed, emitter: SocketEmitter) -> None:
        self.feed = feed
        self.emitter = emitter

    async def deliver_all(self, events: Iterable[Event]) -> None:
        """Deliver one message's events in order, host-status bursts condensed."""
        for event in host_status_bursts_condense(list(events)):
            await self.deliver(event)

    async def deliver(self, event: Event) -> None:
        try:
            await self._route(event)
        except Exception:
            # One bad event must not stop the listener that delivers the rest.
            logger.warning("could not deliver event %s", event.get("type"), exc_info=True)

    async def _route(self, event: Event) -> None:
        kind, audience = event["type"], event["audience"]
        if kind == EventType.HOSTS_CHANGED:
            self.feed.changed()
            return
        if audience == Audience.AGENT:
            agent_events_deliver(event)
            return
        name = SOCKET_EVENTS.get(kind)
        if name is None or audience not in CLIENT_AUDIENCES:
            logger.debug("event %s for %s has no Socket.IO route", kind, audience)
            return
        try:
            room = event_room(name)
        except NoAudience:
            logger.warning("event %s has no audience in twin.audiences; sent to nobody", name)
            return
        await self.emitter.to_room(name, {"type": name, **event["payload"]}, room=room)
