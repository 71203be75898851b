"""The dispatcher: routes each event to what handles it in this process, by type and audience.

- hosts changed: the twin feed rebuilds (and pushes ``twin-state``/``twin-delta``);
- events with a Socket.IO name (``SOCKET_EVENTS``): emitted to the audience's
  room: every reader, or staff readers only;
- events for one host's agent: wake that host's long polls in this process.
"""

from __future__ import annotations

import logging

from common.events import Audience, Event, EventType, agent_events_deliver
from twin.live.emitter import STAFF_ROOM, SocketEmitter
from twin.live.feed import TwinFeed

logger = logging.getLogger(__name__)

# The Socket.IO event each typed event is pushed as on /digital-twin (docs/api.md).
SOCKET_EVENTS: dict[str, str] = {
    EventType.HOST_STATUS: "host-status",
    EventType.COMMAND_UPDATED: "command-update",
}
# Rooms of the audiences that Socket.IO clients belong to (None: every client).
AUDIENCE_ROOMS: dict[str, str | None] = {Audience.READERS: None, Audience.STAFF: STAFF_ROOM}


class EventDispatcher:
    """Hands events to the feed, the emitter or waiting agents."""

    def __init__(self, *, feed: TwinFeed, emitter: SocketEmitter) -> None:
        self.feed = feed
        self.emitter = emitter

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
        if name is None or audience not in AUDIENCE_ROOMS:
            logger.debug("event %s for %s has no Socket.IO route", kind, audience)
            return
        await self.emitter.to_room(name, {"type": name, **event["payload"]}, room=AUDIENCE_ROOMS[audience])
