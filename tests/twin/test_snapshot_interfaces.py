"""Links that name an interface take their traffic from that interface's own counters."""

from __future__ import annotations

import pytest

from hosts.models import Interface
from hosts.topology import topology_import
from metrics.models import InterfaceCounters
from tests.conftest import sample_dict, seconds_ago
from tests.fabric.fixtures import as_file, hosts_create, leaf_spine
from twin.snapshot import snapshot_build

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("open_twin")]

GB = 10**9


def _links(state) -> dict[str, dict]:
    return {link["id"]: link for link in state["links"]}


def _two_readings(post_batch, hostname: str, first: dict[str, tuple[int, int]], second: dict[str, tuple[int, int]]):
    """Two samples 10 s apart with these (rx, tx) per interface, and the host's total as their sum."""
    for at, counters in ((seconds_ago(12), first), (seconds_ago(2), second)):
        interfaces = [
            {"name": n, "rx_bytes": rx, "tx_bytes": tx, "speed_mbps": 25000} for n, (rx, tx) in counters.items()
        ]
        total_rx, total_tx = sum(rx for rx, _ in counters.values()), sum(tx for _, tx in counters.values())
        response = post_batch(
            [sample_dict(hostname, at=at, net_bytes_rx=total_rx, net_bytes_tx=total_tx, interfaces=interfaces)]
        )
        assert response.status_code == 202, response.content
        assert response.json()["accepted"] == 1


def test_a_host_with_two_links_shows_each_links_own_traffic(post_batch):
    hosts_create()
    topology_import(body=as_file(leaf_spine(dual_homed="h-1a")))
    # eth0 (to leaf-1) moves 5 GB in 10 s = 4 Gbit/s; eth1 (to leaf-2) 1.25 GB = 1 Gbit/s.
    _two_readings(
        post_batch, "h-1a", {"eth0": (0, 0), "eth1": (0, 0)}, {"eth0": (3 * GB, 2 * GB), "eth1": (GB, GB // 4)}
    )
    links = _links(snapshot_build())
    assert links["leaf-1::h-1a"]["throughputGbps"] == pytest.approx(4.0, rel=0.02)
    assert links["leaf-2::h-1a"]["throughputGbps"] == pytest.approx(1.0, rel=0.02)
    # The default capacity (10 Gbit/s): each link's own utilization.
    assert links["leaf-1::h-1a"]["utilization"] == pytest.approx(0.4, rel=0.02)
    assert set(links["leaf-1::h-1a"]) == {"id", "source", "target", "throughputGbps", "utilization"}


def test_an_interface_counter_reset_shows_no_throughput_instead_of_a_spike(post_batch):
    hosts_create()
    topology_import(body=as_file(leaf_spine()))
    _two_readings(post_batch, "h-1a", {"eth0": (5 * GB, 5 * GB)}, {"eth0": (10, 10)})
    assert _links(snapshot_build())["leaf-1::h-1a"]["throughputGbps"] == 0.0


def test_a_link_without_interfaces_keeps_the_hosts_total(post_batch):
    hosts_create(["solo"])
    _two_readings(post_batch, "solo", {"eth0": (0, 0)}, {"eth0": (3 * GB, 2 * GB)})
    assert _links(snapshot_build())["core-switch::solo"]["throughputGbps"] == pytest.approx(4.0, rel=0.02)


def test_a_link_whose_interface_never_reported_keeps_the_hosts_total(post_batch):
    hosts_create()
    topology_import(body=as_file(leaf_spine()))
    for at, total in ((seconds_ago(12), 0), (seconds_ago(2), 5 * GB)):
        post_batch([sample_dict("h-1b", at=at, net_bytes_rx=total, net_bytes_tx=0)])
    assert _links(snapshot_build())["leaf-1::h-1b"]["throughputGbps"] == pytest.approx(4.0, rel=0.02)


def test_reported_interfaces_are_recorded_with_their_speed_and_mac(post_batch):
    hosts_create(["solo"])
    interface = {"name": "eth0", "rx_bytes": 1, "tx_bytes": 2, "speed_mbps": 10000, "mac": "AA:BB:CC:DD:EE:01"}
    post_batch([sample_dict("solo", interfaces=[interface])])
    stored = Interface.objects.get(host__hostname="solo", name="eth0")
    assert (stored.speed_mbps, stored.mac) == (10000, "aa:bb:cc:dd:ee:01")
    assert InterfaceCounters.objects.get(interface=stored).rx_bytes == 1


def test_a_late_sample_moves_no_interface_counters_backwards(post_batch):
    hosts_create(["solo"])
    post_batch([sample_dict("solo", at=seconds_ago(2), interfaces=[{"name": "eth0", "rx_bytes": 9, "tx_bytes": 9}])])
    post_batch([sample_dict("solo", at=seconds_ago(30), interfaces=[{"name": "eth0", "rx_bytes": 1, "tx_bytes": 1}])])
    assert InterfaceCounters.objects.get(interface__name="eth0").rx_bytes == 9
