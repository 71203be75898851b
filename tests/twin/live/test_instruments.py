"""The live side's metrics on a real server: clients by mode, pushes and bytes sent, channel lag, snapshot builds."""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
import socketio

from tests.conftest import sample_dict
from tests.e2e.conftest import LiveServer
from tests.e2e.test_socketio import NAMESPACE, post
from tests.ops.test_prometheus import samples_of, value

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(server: LiveServer) -> Samples:
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=15) as response:
        return samples_of(response.read().decode())


async def scrape_until(server: LiveServer, check: Callable[[Samples], bool], timeout: float = 10) -> Samples:
    """The first scrape ``check`` accepts (the server records after it sends, a moment after the client sees it)."""
    deadline = time.monotonic() + timeout
    while True:
        samples = await asyncio.to_thread(scrape, server)
        if check(samples) or time.monotonic() > deadline:
            return samples
        await asyncio.sleep(0.1)


class Listener:
    """A Socket.IO client on /digital-twin counting what it receives, by event."""

    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.received: dict[str, list[Any]] = {"twin-state": [], "twin-delta": []}
        for event in self.received:
            self.client.on(event, self._recorder(event), namespace=NAMESPACE)

    def _recorder(self, event: str) -> Callable[[Any], None]:
        return lambda data: self.received[event].append(data)

    async def until(self, event: str, count: int, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received[event]) < count:
            assert time.monotonic() < deadline, f"{count} {event} expected, got {len(self.received[event])}"
            await asyncio.sleep(0.05)


def test_clients_pushes_bytes_lag_and_builds_move_as_a_dashboard_connects_and_receives(live_twin: LiveServer):
    async def scenario() -> tuple[Samples, Samples, Samples, Samples]:
        await post(live_twin.url, [sample_dict("live-inst-01", cpu_load=1.0)])
        before = await asyncio.to_thread(scrape, live_twin)
        listener = Listener()
        await listener.client.connect(live_twin.url, namespaces=[NAMESPACE], transports=["websocket"])
        try:
            await listener.until("twin-state", 1)
            connected = await scrape_until(live_twin, lambda s: value(s, "twin_live_clients", mode="full") == 1)
            answer = await listener.client.call("subscribe", {"mode": "delta"}, namespace=NAMESPACE, timeout=10)
            assert answer == {"mode": "delta"}
            await listener.until("twin-state", 2)  # a delta subscriber's starting state
            await post(live_twin.url, [sample_dict("live-inst-01", cpu_load=99.0)])
            await listener.until("twin-delta", 1)
            subscribed = await scrape_until(
                live_twin, lambda s: value(s, "twin_live_messages_sent_total", event="twin-delta") >= 1
            )
        finally:
            with contextlib.suppress(Exception):
                await listener.client.disconnect()
        left = await scrape_until(live_twin, lambda s: value(s, "twin_live_clients", mode="delta") == 0)
        return before, connected, subscribed, left

    before, connected, subscribed, left = asyncio.run(scenario())

    def grown(samples: Samples, name: str, **labels: str) -> float:
        return value(samples, name, **labels) - value(before, name, **labels)

    assert value(before, "twin_live_clients", mode="full") == 0
    assert value(connected, "twin_live_clients", mode="full") == 1
    assert value(subscribed, "twin_live_clients", mode="full") == 0
    assert value(subscribed, "twin_live_clients", mode="delta") == 1
    assert value(left, "twin_live_clients", mode="delta") == 0
    # Two starting states (on connecting, on subscribing), then pushed deltas with their bytes.
    assert grown(subscribed, "twin_live_messages_sent_total", event="twin-state") >= 2
    assert grown(subscribed, "twin_live_sent_bytes_total", event="twin-state") > 200
    assert grown(subscribed, "twin_live_pushes_total") >= 1
    assert grown(subscribed, "twin_live_messages_sent_total", event="twin-delta") >= 1
    assert grown(subscribed, "twin_live_sent_bytes_total", event="twin-delta") > 0
    # The batch's hosts-changed event came through the channel layer to the listener.
    assert grown(subscribed, "twin_channel_layer_lag_seconds_count") >= 1
    assert grown(subscribed, "twin_channel_layer_lag_seconds_bucket", le="+Inf") >= 1
    # The feed built the twin it pushed; the last document sent has the host and a size.
    assert grown(subscribed, "twin_snapshot_build_seconds_count", reader="live") >= 1
    assert value(subscribed, "twin_snapshot_hosts") >= 1
    assert value(subscribed, "twin_snapshot_bytes") > 200
