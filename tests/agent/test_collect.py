"""Collection on this machine: real psutil values, within their ranges, in the server's sample shape."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import psutil
import pytest
from django.utils import timezone
from twin_agent import __version__
from twin_agent.collect import Collector, interfaces_busiest, platform_name, sample_bytes

from hosts.models import Interface
from metrics.models import InterfaceCounters
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


def _nics_but_loopback() -> set[str]:
    stats = psutil.net_if_stats()
    return {
        nic
        for nic in psutil.net_io_counters(pernic=True)
        if nic != "lo" and "loopback" not in getattr(stats.get(nic), "flags", "")
    }


def test_each_interface_but_loopback_is_reported_with_its_own_real_counters():
    before = psutil.net_io_counters(pernic=True)
    sample = Collector(hostname="test-host").sample()
    after = psutil.net_io_counters(pernic=True)

    reported = {i["name"]: i for i in sample.get("interfaces", [])}
    assert set(reported) == _nics_but_loopback()
    assert "lo" not in reported
    for name, interface in reported.items():
        assert before[name].bytes_recv <= interface["rx_bytes"] <= after[name].bytes_recv
        assert before[name].bytes_sent <= interface["tx_bytes"] <= after[name].bytes_sent
    assert sample["net_bytes_tx"] == sum(i["tx_bytes"] for i in reported.values())
    assert sample["net_bytes_rx"] == sum(i["rx_bytes"] for i in reported.values())


def test_an_interface_carries_its_mac_and_a_speed_only_where_the_kernel_knows_one():
    stats, addresses = psutil.net_if_stats(), psutil.net_if_addrs()
    for interface in Collector(hostname="test-host").sample().get("interfaces", []):
        name = interface["name"]
        macs = {a.address.lower() for a in addresses.get(name, ()) if a.family == psutil.AF_LINK}
        assert interface.get("mac") in macs | {None}
        if "mac" not in interface:
            assert macs <= {"00:00:00:00:00:00"}
        speed = stats[name].speed if name in stats else 0
        assert interface.get("speed_mbps") == (speed if speed > 0 else None)


def test_a_host_with_more_nics_than_the_server_keeps_reports_its_busiest_in_order():
    interfaces = [{"name": f"veth{i}", "rx_bytes": i, "tx_bytes": 0} for i in range(70)]
    kept = interfaces_busiest(interfaces, limit=64)
    assert [i["name"] for i in kept] == [f"veth{i}" for i in range(6, 70)]
    assert interfaces_busiest(interfaces[:3]) == interfaces[:3]


def test_the_server_reads_the_agents_interfaces_as_the_sample_shape_names_them():
    checked = sample_validate(
        sample_bytes(Collector(hostname="test-host").sample()),
        now=timezone.now(),
        max_future_skew=timedelta(seconds=300),
    )
    assert isinstance(checked, SampleIn), checked
    assert {i.name for i in checked.interfaces or []} == _nics_but_loopback()


@pytest.mark.django_db
@pytest.mark.usefixtures("open_twin")
def test_the_agents_interfaces_are_stored_with_their_macs_and_counters(post_batch):
    collector = Collector(hostname="test-host")
    for _ in range(2):
        response = post_batch([collector.sample()])
        assert response.status_code == 202 and response.json()["accepted"] == 1, response.content
    stored = {i.name: i for i in Interface.objects.filter(host__hostname="test-host")}
    reported = {i["name"]: i for i in collector.sample().get("interfaces", [])}
    assert set(stored) == set(reported)
    for name, interface in stored.items():
        assert interface.mac == reported[name].get("mac", "")
        assert InterfaceCounters.objects.filter(interface=interface).exists()
