"""The twin-state document: shape, derived status and throughput, query cost."""

from __future__ import annotations

import gc
import gzip
from datetime import timedelta

import brotli
import orjson
import pytest
import zstandard
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from common.formats import iso_utc
from hosts.models import Host, Link, Rack
from hosts.topology import topology_import
from metrics.models import LatestMetrics
from tests.conftest import sample_dict
from tests.fabric.fixtures import as_file, hosts_create, leaf_spine
from tests.hosts.test_admin import _host_form
from twin import views
from twin.snapshot import gc_paused, snapshot_build

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("open_twin")]

SEED_HOST_KEYS = [
    "hostname",
    "displayName",
    "ip",
    "status",
    "lastSeen",
    "agentVersion",
    "platform",
    "rack",
    "metrics",
    "position",
]
# Keys the twin adds after the seed's, in this order.
ADDED_HOST_KEYS = ["isVirtual", "reachable", "redundancy"]


def host_doc(state, hostname):
    return next(h for h in state["hosts"] if h["hostname"] == hostname)


def test_a_fresh_twin_holds_only_the_core_switch_as_in_the_seed():
    state = snapshot_build()
    assert list(state) == ["type", "twinId", "generatedAt", "hosts", "links"]
    assert state["type"] == "twin-state"
    core = host_doc(state, "core-switch")
    assert (core["agentVersion"], core["platform"], core["displayName"]) == ("virtual", "virtual-switch", "Core Switch")
    assert core["status"] == "unknown"
    assert core["position"] == {"x": 0.0, "y": 0.0, "z": 0.0}
    assert state["links"] == []


def test_a_reporting_host_has_the_seed_fields_in_the_seed_order(post_batch):
    post_batch([sample_dict()])
    state = snapshot_build()
    titan = host_doc(state, "titan-01")
    assert list(titan) == SEED_HOST_KEYS + ADDED_HOST_KEYS
    assert titan["status"] == "online"
    assert titan["rack"] == "R1"
    assert titan["metrics"] == {
        "cpuLoad": 42.5,
        "memoryUsedPercent": 63.2,
        "loadAverage": 1.72,
        "uptimeSeconds": 7200,
        "netBytesTx": 1250000000,
        "netBytesRx": 980000000,
    }
    assert titan["position"] == {"x": 1.2, "y": 0.4, "z": -0.8}
    assert state["links"] == [
        {
            "id": "core-switch::titan-01",
            "source": "core-switch",
            "target": "titan-01",
            "throughputGbps": 0.0,
            "utilization": 0.0,
        }
    ]


def test_rack_is_left_out_for_a_host_without_one_and_counters_when_unknown(post_batch):
    sample = sample_dict()
    for field in ("rack", "net_bytes_tx", "net_bytes_rx"):
        del sample[field]
    post_batch([sample])
    titan = host_doc(snapshot_build(), "titan-01")
    assert "rack" not in titan
    assert "netBytesTx" not in titan["metrics"] and "netBytesRx" not in titan["metrics"]


def test_display_name_and_ip_come_from_the_inventory(post_batch):
    post_batch([sample_dict()])
    Host.objects.filter(hostname="titan-01").update(display_name="Titan 01", ip="10.0.0.10")
    titan = host_doc(snapshot_build(), "titan-01")
    assert (titan["displayName"], titan["ip"]) == ("Titan 01", "10.0.0.10")


def test_a_host_an_admin_marked_virtual_says_so_and_keeps_the_seeds_keys(admin_client, post_batch):
    post_batch([sample_dict("titan-01"), sample_dict("titan-02")])
    host = Host.objects.get(hostname="titan-02")
    response = admin_client.post(reverse("admin:hosts_host_change", args=[host.pk]), _host_form(host, is_virtual="on"))
    assert response.status_code == 302, response.content
    live = snapshot_build()
    # The same from the endpoint and from the twin as it was (raw rows: 0 or 1 on SQLite, a boolean here).
    for state in (live, admin_client.get("/api/twin/state").json(), snapshot_build(at=timezone.now())):
        marked, agent, core = (host_doc(state, name) for name in ("titan-02", "titan-01", "core-switch"))
        assert marked["isVirtual"] is True and core["isVirtual"] is True
        assert agent["isVirtual"] is False
        # An added key only: the seed's are all there, in the seed's order, with the agent's values.
        assert list(marked) == list(agent) == SEED_HOST_KEYS + ADDED_HOST_KEYS
        assert (marked["agentVersion"], marked["platform"]) == (agent["agentVersion"], agent["platform"])


def test_status_moves_with_the_clock_alone(post_batch):
    post_batch([sample_dict()])
    now = timezone.now()
    assert host_doc(snapshot_build(now=now + timedelta(seconds=31)), "titan-01")["status"] == "stale"
    assert host_doc(snapshot_build(now=now + timedelta(seconds=121)), "titan-01")["status"] == "offline"


def test_the_core_switch_is_online_while_a_linked_host_is(post_batch):
    post_batch([sample_dict()])
    now = timezone.now()
    core = host_doc(snapshot_build(now=now), "core-switch")
    assert core["status"] == "online"
    assert core["lastSeen"] == host_doc(snapshot_build(now=now), "titan-01")["lastSeen"]
    assert host_doc(snapshot_build(now=now + timedelta(seconds=121)), "core-switch")["status"] == "offline"


def test_in_a_leaf_spine_fabric_the_core_is_online_through_its_spines_while_hosts_below_are(post_batch):
    hosts_create()
    topology_import(body=as_file(leaf_spine()))
    post_batch([sample_dict("h-1a")])
    state = snapshot_build()
    # core-switch sorts before its spines; it still follows them, and they their ToRs.
    assert [host_doc(state, n)["status"] for n in ("leaf-1", "spine-1", "core-switch")] == ["online"] * 3
    assert host_doc(state, "core-switch")["lastSeen"] == host_doc(state, "h-1a")["lastSeen"]


def test_a_host_that_never_reported_is_unknown():
    Host.objects.create(hostname="spare-01")
    doc = host_doc(snapshot_build(), "spare-01")
    assert doc["status"] == "unknown"
    assert doc["lastSeen"] is None
    assert doc["metrics"]["cpuLoad"] is None


def test_link_throughput_and_utilization_come_from_the_last_two_counter_readings(post_batch):
    now = timezone.now()
    post_batch([sample_dict(at=now - timedelta(seconds=20), net_bytes_tx=0, net_bytes_rx=0)])
    post_batch([sample_dict(at=now - timedelta(seconds=10), net_bytes_tx=3_000_000_000, net_bytes_rx=2_000_000_000)])
    link = snapshot_build()["links"][0]
    assert link["throughputGbps"] == pytest.approx(4.0)
    assert link["utilization"] == pytest.approx(0.4)


def test_utilization_uses_the_links_capacity_and_stays_within_one(post_batch):
    now = timezone.now()
    post_batch([sample_dict(at=now - timedelta(seconds=20), net_bytes_tx=0, net_bytes_rx=0)])
    post_batch([sample_dict(at=now - timedelta(seconds=10), net_bytes_tx=3_000_000_000, net_bytes_rx=2_000_000_000)])
    Link.objects.update(capacity_gbps=1.0)
    assert snapshot_build()["links"][0]["utilization"] == 1.0


def test_a_counter_reset_shows_no_throughput_instead_of_a_spike(post_batch):
    now = timezone.now()
    post_batch([sample_dict(at=now - timedelta(seconds=20), net_bytes_tx=9_000_000_000, net_bytes_rx=10)])
    post_batch([sample_dict(at=now - timedelta(seconds=10), net_bytes_tx=100, net_bytes_rx=20)])
    assert snapshot_build()["links"][0]["throughputGbps"] == 0.0


def _queries_for_snapshot() -> int:
    with CaptureQueriesContext(connection) as ctx:
        snapshot_build()
    return len(ctx.captured_queries)


def test_the_snapshot_costs_the_same_queries_at_5_and_at_200_hosts(post_batch):
    post_batch([sample_dict(f"h-{i}", rack=f"R{i % 3}") for i in range(5)])
    few = _queries_for_snapshot()
    post_batch([sample_dict(f"h-{i}", rack=f"R{i % 7}") for i in range(5, 200)])
    rack = Rack.objects.create(name="spare")
    Host.objects.create(hostname="unplaced", rack=rack)
    # Hosts, links and the floor (facility.layout).
    assert few == _queries_for_snapshot() == 3


def test_the_state_endpoint_returns_the_snapshot(client, post_batch):
    post_batch([sample_dict()])
    response = client.get("/api/twin/state")
    assert response.status_code == 200
    body = response.json()
    assert body["type"] == "twin-state"
    assert [h["hostname"] for h in body["hosts"]] == ["core-switch", "titan-01"]


def test_the_twin_id_is_configurable(settings):
    settings.TWIN_ID = "project5-a1b2c3d4"
    assert snapshot_build()["twinId"] == "project5-a1b2c3d4"


@pytest.mark.parametrize("microsecond", [0, 500, 123456, 999999])
def test_last_seen_is_written_as_every_other_time_whichever_side_writes_it(post_batch, microsecond):
    # On PostgreSQL the database writes the text, elsewhere Python does.
    post_batch([sample_dict()])
    seen = timezone.now().replace(microsecond=microsecond) - timedelta(days=400)
    LatestMetrics.objects.update(last_seen=seen)
    state = snapshot_build()
    assert host_doc(state, "titan-01")["lastSeen"] == iso_utc(seen)
    # The switch shows its freshest neighbour's.
    assert host_doc(state, "core-switch")["lastSeen"] == iso_utc(seen)


def test_building_the_snapshot_leaves_the_garbage_collector_as_it_was(post_batch):
    post_batch([sample_dict()])
    assert gc.isenabled()
    snapshot_build()
    assert gc.isenabled()
    gc.disable()
    try:
        snapshot_build()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_gc_paused_holds_the_collector_off_and_the_outermost_block_turns_it_back_on():
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_the_collector_is_on_again_after_a_build_that_failed():
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("the database went away")
    assert gc.isenabled()


@pytest.mark.parametrize("query", ["", "?at=2026-01-01T00:00:00Z"])
def test_the_state_endpoint_builds_with_the_collector_held_off(client, monkeypatch, query):
    seen = []

    def build(**kwargs):
        seen.append(gc.isenabled())
        return snapshot_build(**kwargs)

    monkeypatch.setattr(views, "snapshot_build", build)
    assert client.get(f"/api/twin/state{query}").status_code == 200
    assert seen == [False]
    assert gc.isenabled()


@pytest.mark.parametrize("encoding", ["zstd", "br", "gzip"])
def test_the_state_is_compressed_for_a_client_that_accepts_it(client, post_batch, encoding):
    post_batch([sample_dict(hostname=f"node-{n:02}") for n in range(30)])
    plain = client.get("/api/twin/state")
    packed = client.get("/api/twin/state", headers={"Accept-Encoding": f"{encoding}, identity;q=0.1"})
    assert packed["Content-Encoding"] == encoding and len(packed.content) < len(plain.content) / 3
    inflate = {"zstd": zstandard.ZstdDecompressor().decompress, "br": brotli.decompress, "gzip": gzip.decompress}
    unpacked = orjson.loads(inflate[encoding](packed.content))
    assert [h["hostname"] for h in unpacked["hosts"]] == [h["hostname"] for h in plain.json()["hosts"]]
