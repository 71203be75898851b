"""twin.live.dispatch: each event goes where its type and audience say, and nowhere else."""

from __future__ import annotations

import asyncio
from typing import Any

from common.events import Audience, Event, EventType, agent_event_wait, hosts_changed
from twin.live.dispatch import EventDispatcher
from twin.live.emitter import STAFF_ROOM


class RecordingFeed:
    def __init__(self) -> None:
        self.changes = 0

    def changed(self) -> None:
        self.changes += 1


class RecordingEmitter:
    def __init__(self) -> None:
        self.sent: list[tuple[str, Any, str | None]] = []

    async def to_room(self, event: str, payload: Any, *, room: str | None) -> None:
        self.sent.append((event, payload, room))


def _deliver(*events: Event) -> tuple[RecordingFeed, RecordingEmitter]:
    feed, emitter = RecordingFeed(), RecordingEmitter()
    dispatcher = EventDispatcher(feed=feed, emitter=emitter)  # type: ignore[arg-type]

    async def run() -> None:
        for event in events:
            await dispatcher.deliver(event)

    asyncio.run(run())
    return feed, emitter


def test_a_hosts_changed_event_makes_the_feed_rebuild_and_emits_nothing_itself():
    feed, emitter = _deliver(hosts_changed(hostnames=["titan-01"]))
    assert feed.changes == 1 and emitter.sent == []


def test_a_host_status_event_reaches_every_reader_as_host_status():
    payload = {"hostname": "titan-01", "from": "online", "to": "stale", "at": "…", "cause": "silence"}
    _, emitter = _deliver({"type": EventType.HOST_STATUS, "audience": Audience.READERS, "payload": payload})
    assert emitter.sent == [("host-status", {"type": "host-status", **payload}, None)]


def test_a_command_update_reaches_staff_only():
    payload = {"id": 1, "host": "titan-01", "state": "running"}
    _, emitter = _deliver({"type": EventType.COMMAND_UPDATED, "audience": Audience.STAFF, "payload": payload})
    assert emitter.sent == [("command-update", {"type": "command-update", **payload}, STAFF_ROOM)]


def test_an_agent_event_wakes_that_agents_long_poll_and_reaches_no_dashboard():
    emitter = RecordingEmitter()
    dispatcher = EventDispatcher(feed=RecordingFeed(), emitter=emitter)  # type: ignore[arg-type]
    event: Event = {
        "type": EventType.INVOCATION_AVAILABLE,
        "audience": Audience.AGENT,
        "host": "titan-01",
        "payload": {"hostname": "titan-01"},
    }

    async def run() -> bool:
        waiting = asyncio.ensure_future(agent_event_wait(host="titan-01", timeout=2))
        await asyncio.sleep(0.01)
        await dispatcher.deliver(event)
        return await waiting

    assert asyncio.run(run()) is True
    assert emitter.sent == []


def test_an_event_of_an_unknown_type_is_dropped_without_stopping_the_rest():
    unknown: Event = {"type": "unknown.kind", "audience": Audience.READERS, "payload": {}}
    feed, emitter = _deliver(unknown, hosts_changed(hostnames=None))
    assert feed.changes == 1 and emitter.sent == []
