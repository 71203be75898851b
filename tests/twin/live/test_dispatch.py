"""twin.live.dispatch: each event goes where its type and audience say, and nowhere else."""

from __future__ import annotations

import asyncio
from typing import Any

from commands.waiters import agent_event_wait
from common.events import Audience, Event, EventType, alert_updated, hosts_changed
from twin.audiences import event_room
from twin.live.dispatch import HOST_STATUS_BURST_MAX, EventDispatcher


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


def test_a_command_update_reaches_only_the_room_of_those_who_may_read_commands():
    payload = {"id": 1, "host": "titan-01", "state": "running"}
    _, emitter = _deliver({"type": EventType.COMMAND_UPDATED, "audience": Audience.STAFF, "payload": payload})
    assert emitter.sent == [("command-update", {"type": "command-update", **payload}, event_room("command-update"))]
    assert event_room("command-update") is not None


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


def _status_change(n: int, to: str = "stale") -> Event:
    payload = {"hostname": f"node-{n:05d}", "from": "online", "to": to, "at": f"2026-11-29T10:00:{n % 60:02d}.000Z"}
    return {"type": EventType.HOST_STATUS, "audience": Audience.READERS, "payload": {**payload, "cause": "silence"}}


def _deliver_message(events: list[Event]) -> tuple[RecordingFeed, RecordingEmitter]:
    feed, emitter = RecordingFeed(), RecordingEmitter()
    dispatcher = EventDispatcher(feed=feed, emitter=emitter)  # type: ignore[arg-type]
    asyncio.run(dispatcher.deliver_all(events))
    return feed, emitter


def test_up_to_the_burst_limit_each_status_change_is_its_own_event():
    _, emitter = _deliver_message([_status_change(n) for n in range(HOST_STATUS_BURST_MAX)])
    assert len(emitter.sent) == HOST_STATUS_BURST_MAX
    assert [payload["hostname"] for _, payload, _ in emitter.sent][:2] == ["node-00000", "node-00001"]


def test_a_burst_of_status_changes_reaches_readers_as_one_summary_in_the_place_of_the_first():
    changes = [_status_change(n, to="offline" if n % 4 == 0 else "stale") for n in range(10_000)]
    feed, emitter = _deliver_message([hosts_changed(hostnames=["a"]), *changes, hosts_changed(hostnames=["b"])])
    assert feed.changes == 2
    assert emitter.sent == [
        (
            "host-status",
            {
                "type": "host-status",
                "burst": True,
                "count": 10_000,
                "at": "2026-11-29T10:00:59.000Z",
                "counts": {"offline": 2_500, "stale": 7_500},
            },
            None,
        )
    ]


def test_a_burst_leaves_the_messages_other_events_in_their_order():
    command = {"type": EventType.COMMAND_UPDATED, "audience": Audience.STAFF, "payload": {"id": 7, "state": "running"}}
    changes = [_status_change(n) for n in range(HOST_STATUS_BURST_MAX + 1)]
    _, emitter = _deliver_message([*changes[:50], command, *changes[50:]])
    assert [(event, payload.get("burst", False)) for event, payload, _ in emitter.sent] == [
        ("host-status", True),
        ("command-update", False),
    ]


def _alert_change(n: int, to: str) -> Event:
    return alert_updated(
        alert_id=n,
        rule="HostOffline",
        hostname=f"node-{n:05d}",
        severity="critical",
        from_state=None if to == "pending" else "pending",
        to_state=to,
        at="2026-12-08T01:00:00.000Z",
        values={},
    )


def test_a_burst_of_alert_changes_reaches_readers_as_one_alert_update_summary():
    changes = [_alert_change(n, to) for n in range(500) for to in ("pending", "firing")]
    _, emitter = _deliver_message(changes)
    assert emitter.sent == [
        (
            "alert-update",
            {
                "type": "alert-update",
                "burst": True,
                "count": 1000,
                "at": "2026-12-08T01:00:00.000Z",
                "counts": {"pending": 500, "firing": 500},
            },
            None,
        )
    ]


def test_a_few_alert_changes_go_out_each_as_its_own_alert_update():
    _, emitter = _deliver_message([_alert_change(1, "pending"), _alert_change(1, "firing")])
    assert [(name, payload["to"], payload["hostname"]) for name, payload, _ in emitter.sent] == [
        ("alert-update", "pending", "node-00001"),
        ("alert-update", "firing", "node-00001"),
    ]


def test_a_racks_alert_change_reaches_readers_with_its_rack_and_no_hostname():
    change = alert_updated(
        alert_id=9,
        rule="RackPowerHigh",
        hostname=None,
        rack="A01",
        severity="warning",
        from_state="pending",
        to_state="firing",
        at="2026-12-08T01:00:00.000Z",
        values={"value": 93.0, "threshold": 90.0},
    )
    _, emitter = _deliver_message([change])
    ((name, payload, _),) = emitter.sent
    assert (name, payload["rule"], payload["rack"], payload["hostname"]) == (
        "alert-update",
        "RackPowerHigh",
        "A01",
        None,
    )
