"""Collection on this machine: real psutil values, within their ranges, in the server's sample shape."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import psutil
from django.utils import timezone
from twin_agent import __version__
from twin_agent.collect import Collector, platform_name, sample_bytes

from metrics.schema import SampleIn, sample_validate


def test_a_sample_holds_this_machines_real_values_within_their_ranges():
    collector = Collector(hostname="test-host")
    busy_until = time.monotonic() + 0.3
    while time.monotonic() < busy_until:  # some CPU work for the first interval to measure
        sum(range(1000))
    sample = collector.sample()

    assert 0 <= sample["cpu_load"] <= 100
    assert 0 < sample["memory_used_percent"] < 100
    assert abs(sample["memory_used_percent"] - psutil.virtual_memory().percent) < 10
    assert sample["load_average"] >= 0
    assert abs(sample["uptime_seconds"] - (time.time() - psutil.boot_time())) < 5
    assert sample["uptime_seconds"] > 0
    assert sample["net_bytes_tx"] >= 0 and sample["net_bytes_rx"] >= 0
    assert (sample["agent_version"], sample["platform"]) == (__version__, platform_name())
    stamp = datetime.fromisoformat(sample["timestamp"].replace("Z", "+00:00"))
    assert abs(stamp - datetime.now(UTC)) < timedelta(seconds=5)
    assert sample["timestamp"].endswith("Z")


def _counter_sum(kind: str, *, loopback: bool) -> int:
    return sum(getattr(c, kind) for n, c in psutil.net_io_counters(pernic=True).items() if loopback or n != "lo")


def test_network_counters_are_the_sum_of_every_interface_but_loopback():
    collector = Collector(hostname="test-host")
    before = {kind: _counter_sum(kind, loopback=False) for kind in ("bytes_sent", "bytes_recv")}
    sample = collector.sample()
    after = {kind: _counter_sum(kind, loopback=False) for kind in ("bytes_sent", "bytes_recv")}
    assert before["bytes_sent"] <= sample["net_bytes_tx"] <= after["bytes_sent"]
    assert before["bytes_recv"] <= sample["net_bytes_rx"] <= after["bytes_recv"]


def test_the_server_validates_the_agents_sample_as_it_stands():
    collector = Collector(hostname="Test-Host", rack="R7", position={"x": 1.0, "y": 0.5, "z": 2.0})
    checked = sample_validate(
        sample_bytes(collector.sample()), now=timezone.now(), max_future_skew=timedelta(seconds=300)
    )
    assert isinstance(checked, SampleIn), checked
    assert (checked.hostname, checked.rack, checked.position.y) == ("test-host", "R7", 0.5)


def test_timestamps_strictly_rise_even_within_one_millisecond():
    collector = Collector(hostname="test-host")
    stamps = [collector.sample()["timestamp"] for _ in range(20)]
    assert stamps == sorted(set(stamps))
