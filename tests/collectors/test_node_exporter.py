"""The seed's fields from node_exporter's series (collectors.node_exporter)."""

from __future__ import annotations

import pytest

from collectors.node_exporter import instance_host, scrape_sample, series_key
from tests.collectors.writes import node_scrape

T0 = 1_800_000_000_000  # ms


def values_of(series, values=None):
    values = dict(values or {})
    for labels, samples in series:
        labels = dict(labels)
        key = series_key(labels.pop("__name__"), labels)
        if key is not None:
            for value, at in samples:
                values[key] = [at, value]
    return values


@pytest.mark.parametrize(
    ("instance", "host"),
    [("node-a:9100", "node-a"), ("10.0.0.7:9100", "10.0.0.7"), ("[fe80::1]:9100", "fe80::1"), ("node-a", "node-a")],
)
def test_an_instance_label_names_its_host_without_the_port(instance, host):
    assert instance_host(instance) == host


def test_loopback_and_unknown_series_are_not_kept():
    assert series_key("node_network_transmit_bytes_total", {"device": "lo"}) is None
    assert series_key("node_filefd_allocated", {}) is None
    assert series_key("node_cpu_seconds_total", {"cpu": "3", "mode": "idle"}) == "cpu|3|idle"


def test_a_hosts_first_scrape_only_sets_the_baseline_for_cpu():
    values = values_of(node_scrape(T0, busy=10, idle=90))
    sample, baseline = scrape_sample(hostname="node-a", values=values, at_ms=T0, emitted={})
    assert sample is None and baseline["at"] == T0 and baseline["cpus"] == 8 and baseline["devices"] == 2


def test_the_second_scrape_gives_every_seed_field():
    first = values_of(node_scrape(T0, busy=10, idle=90))
    _, baseline = scrape_sample(hostname="node-a", values=first, at_ms=T0, emitted={})
    # 15 s later each CPU spent 3 s busy and 12 s idle: 20 % busy.
    second = values_of(node_scrape(T0 + 15_000, busy=13, idle=102, tx=6_000, rx=9_000), first)
    sample, _ = scrape_sample(hostname="node-a", values=second, at_ms=T0 + 15_000, emitted=baseline)
    assert sample == {
        "hostname": "node-a",
        "timestamp": "2027-01-15T08:00:15.000Z",
        "cpu_load": 20.0,
        "memory_used_percent": 75.0,
        "load_average": 0.75,
        "uptime_seconds": 100_000_015,
        "net_bytes_tx": 18_000,  # eth0 + eth1, not lo
        "net_bytes_rx": 27_000,
        "platform": "Linux-x86_64",
    }


def test_a_counter_reset_is_left_out_of_the_cpu_share_instead_of_going_negative():
    first = values_of(node_scrape(T0, busy=1000, idle=1000))
    _, baseline = scrape_sample(hostname="node-a", values=first, at_ms=T0, emitted={})
    rebooted = values_of(node_scrape(T0 + 15_000, busy=1, idle=2), first)
    sample, baseline = scrape_sample(hostname="node-a", values=rebooted, at_ms=T0 + 15_000, emitted=baseline)
    assert sample is None and baseline["at"] == T0 + 15_000  # the next scrape measures from here
    after = values_of(node_scrape(T0 + 30_000, busy=4, idle=11), rebooted)
    sample, _ = scrape_sample(hostname="node-a", values=after, at_ms=T0 + 30_000, emitted=baseline)
    assert sample is not None and sample["cpu_load"] == 25.0


def test_a_scrape_missing_a_required_series_gives_no_sample_yet():
    series = [s for s in node_scrape(T0 + 15_000) if s[0]["__name__"] != "node_load1"]
    values = values_of(series)
    sample, baseline = scrape_sample(hostname="node-a", values=values, at_ms=T0 + 15_000, emitted={"at": T0, "cpu": {}})
    assert sample is None and baseline == {"at": T0, "cpu": {}}
