"""common.events: committed changes reach every listener as typed events, coalesced but never lost."""

from __future__ import annotations

import asyncio
import threading
import time

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from common.asyncsync import serving_loop_record
from common.events import (
    EVENTS_GROUP,
    EVENTS_MESSAGE,
    HOSTNAMES_MAX,
    Audience,
    Event,
    EventType,
    event_publish,
    events_drain,
    events_dropped,
    events_merge,
    hosts_changed,
)

PUBLISH_GAP = 0.05


async def _received_within(channel: str, seconds: float) -> list[list[Event]]:
    layer = get_channel_layer()
    messages: list[list[Event]] = []
    deadline = asyncio.get_running_loop().time() + seconds
    while (left := deadline - asyncio.get_running_loop().time()) > 0:
        try:
            message = await asyncio.wait_for(layer.receive(channel), timeout=left)
        except TimeoutError:
            break
        assert message["type"] == EVENTS_MESSAGE
        messages.append(message["events"])
    return messages


async def _listening() -> str:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(EVENTS_GROUP, channel)
    return channel


def _status_event(hostname: str) -> Event:
    payload = {"hostname": hostname, "from": "online", "to": "stale", "at": "2026-11-29T10:00:00.000Z"}
    return {"type": EventType.HOST_STATUS, "audience": Audience.READERS, "payload": payload}


def test_a_burst_of_commits_in_a_server_sends_one_message_now_and_one_after_the_gap():
    async def main() -> tuple[list[list[Event]], list[list[Event]]]:
        serving_loop_record(asyncio.get_running_loop())  # as the live side does when a server starts
        channel = await _listening()
        # Request threads of a server, as Django runs sync views under ASGI.
        names = [f"titan-{i:02}" for i in range(20)]
        await asyncio.gather(*(sync_to_async(event_publish)(hosts_changed(hostnames=[n])) for n in names))
        burst = await _received_within(channel, PUBLISH_GAP * 6)
        await asyncio.sleep(PUBLISH_GAP * 2)
        await sync_to_async(event_publish)(hosts_changed(hostnames=["later-01"]))
        later = await _received_within(channel, PUBLISH_GAP * 6)
        return burst, later

    burst, later = asyncio.run(main())
    # One message now, then at most one per gap while the burst lasts (longer on a loaded machine).
    assert 1 <= len(burst) <= 5
    told = {name for events in burst for event in events for name in event["payload"]["hostnames"]}
    assert told == {f"titan-{i:02}" for i in range(20)}
    assert later == [[hosts_changed(hostnames=["later-01"])]]


def test_an_event_published_while_a_send_is_due_is_carried_by_a_later_message():
    async def main() -> list[list[Event]]:
        serving_loop_record(asyncio.get_running_loop())
        channel = await _listening()
        await sync_to_async(event_publish)(hosts_changed(hostnames=["a"]))  # sent at once
        await sync_to_async(event_publish)(hosts_changed(hostnames=["b"]))  # within the gap: due after it
        return await _received_within(channel, PUBLISH_GAP * 6)

    assert asyncio.run(main()) == [[hosts_changed(hostnames=["a"])], [hosts_changed(hostnames=["b"])]]


def test_outside_a_server_an_event_is_sent_at_once():
    async def listen_then_publish() -> list[list[Event]]:
        channel = await _listening()
        # No event loop runs this thread's code: a management command, a shell.
        await asyncio.get_running_loop().run_in_executor(None, event_publish, _status_event("titan-01"))
        return await _received_within(channel, 0.5)

    assert asyncio.run(listen_then_publish()) == [[_status_event("titan-01")]]


def test_a_drain_sends_what_waits_and_then_drops_and_counts_later_events_at_once():
    async def main() -> tuple[int, int, float, list[list[Event]]]:
        serving_loop_record(asyncio.get_running_loop())
        channel = await _listening()
        await sync_to_async(event_publish)(hosts_changed(hostnames=["a"]))  # sent at once
        await sync_to_async(event_publish)(hosts_changed(hostnames=["b"]))  # due after the gap: the drain sends it
        sent, _ = await events_drain(timeout=1.0)
        before = events_dropped()
        started = time.monotonic()
        await sync_to_async(event_publish)(hosts_changed(hostnames=["c"]))  # a request finishing after the stop
        took = time.monotonic() - started
        return sent, events_dropped() - before, took, await _received_within(channel, PUBLISH_GAP * 6)

    sent, dropped, took, received = asyncio.run(main())
    assert sent >= 1 and dropped == 1 and took < 1.0
    assert received == [[hosts_changed(hostnames=["a"])], [hosts_changed(hostnames=["b"])]]

    # The drained loop is closed now: a later server (a test's next loop) publishes again.
    async def listen_then_publish() -> list[list[Event]]:
        channel = await _listening()
        await asyncio.get_running_loop().run_in_executor(None, event_publish, _status_event("titan-02"))
        return await _received_within(channel, 0.5)

    assert asyncio.run(listen_then_publish()) == [[_status_event("titan-02")]]


def test_a_request_thread_publishing_after_its_loop_stopped_drops_the_event_instead_of_waiting_for_good():
    loop = asyncio.new_event_loop()
    serving_loop_record(loop)
    gate, finished = threading.Event(), threading.Event()
    took: list[float] = []

    def view() -> None:
        gate.wait(5)
        started = time.monotonic()
        event_publish(hosts_changed(hostnames=["late-01"]))  # asgiref would hand it to the stopped loop
        took.append(time.monotonic() - started)
        finished.set()

    async def serve() -> asyncio.Task[None]:
        task = loop.create_task(sync_to_async(view, thread_sensitive=False)())
        await asyncio.sleep(0.05)  # the view is running on its thread
        return task

    before = events_dropped()
    request = loop.run_until_complete(serve())  # returns: the loop is stopped, not closed, as daphne leaves it
    gate.set()
    try:
        assert finished.wait(5), "the request thread waited for a loop that will never run again"
        assert took[0] < 1.0 and events_dropped() - before == 1
    finally:
        loop.run_until_complete(asyncio.wait([request], timeout=1))
        loop.close()


def test_merging_keeps_one_hosts_changed_event_first_and_every_other_event_in_order():
    merged = events_merge(
        [
            _status_event("a"),
            hosts_changed(hostnames=["b", "c"]),
            _status_event("d"),
            hosts_changed(hostnames=["c", "e"]),
        ]
    )
    assert merged == [hosts_changed(hostnames=["b", "c", "e"]), _status_event("a"), _status_event("d")]


def test_any_host_wins_when_merged_with_named_hosts():
    merged = events_merge([hosts_changed(hostnames=["a"]), hosts_changed(hostnames=None)])
    assert merged == [hosts_changed(hostnames=None)]


def test_a_change_naming_too_many_hosts_says_any_host():
    assert hosts_changed(hostnames=[f"h{i}" for i in range(HOSTNAMES_MAX + 1)])["payload"]["hostnames"] is None
