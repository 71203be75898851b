"""The fleet simulator: its layout and metrics, simulated commands, and a few seconds against a live twin."""

from __future__ import annotations

import argparse
import io
import itertools
import math
import random
import time
from datetime import datetime, timedelta

import orjson
import pytest
from django.core.management import call_command
from django.db.models import Sum
from django.utils import timezone
from twin_agent import simulate
from twin_agent.collect import sample_bytes
from twin_agent.simulate import (
    SERVER_BATCHES_PER_SECOND,
    Fleet,
    MetricModel,
    capacity_warning,
    demo_plan,
    fabric_topology,
    fleet_layout,
    interval_fitting,
)

from hosts.models import FabricRole, Host, Link
from hosts.schema import hostname_normalize
from hosts.topology import topology_import
from metrics.models import BatchReceipt, InterfaceCounters, Sample
from metrics.schema import SampleIn, sample_validate
from tests.agent.fake_twin import FakeTwin
from tests.e2e.conftest import server_start, server_stop


def test_racks_stand_on_a_floor_grid_and_hosts_are_stacked_in_them():
    slots = fleet_layout(hosts=100, racks=9)
    racks: dict[str, list] = {}
    for slot in slots:
        racks.setdefault(slot.rack, []).append(slot)

    assert len(racks) == 9 and len({s.hostname for s in slots}) == 100
    assert all(hostname_normalize(s.hostname) == s.hostname for s in slots)
    floor = {rack: {(s.position["x"], s.position["z"]) for s in members} for rack, members in racks.items()}
    assert all(len(spots) == 1 for spots in floor.values())  # one floor spot per rack
    assert len({next(iter(spots)) for spots in floor.values()}) == 9  # and no two racks share one
    xs = sorted({x for spots in floor.values() for x, _ in spots})
    zs = sorted({z for spots in floor.values() for _, z in spots})
    assert (len(xs), len(zs)) == (3, 3) and min(zs) > 0  # a 3 x 3 grid in front of the core switch
    for members in racks.values():
        heights = [s.position["y"] for s in members]
        assert heights == sorted(heights) and heights[0] >= 0.1 and heights[-1] <= 2.0


def test_simulated_metrics_vary_smoothly_within_their_ranges_and_pass_the_servers_checks():
    start = time.time() - 3600
    model = MetricModel(random.Random(7), now=start)
    samples = [model.sample(hostname="sim-r01-h01", now=start + 10 * i) for i in range(360)]

    for before, after in itertools.pairwise(samples):
        assert abs(after["cpu_load"] - before["cpu_load"]) < 20
        assert abs(after["memory_used_percent"] - before["memory_used_percent"]) < 5
        assert after["net_bytes_tx"] > before["net_bytes_tx"] and after["net_bytes_rx"] > before["net_bytes_rx"]
        assert after["uptime_seconds"] == pytest.approx(before["uptime_seconds"] + 10, abs=0.2)
    cpu = [s["cpu_load"] for s in samples]
    assert all(0 <= c <= 100 for c in cpu) and max(cpu) - min(cpu) > 5  # it moves
    for sample in samples[::50]:
        checked = sample_validate(sample_bytes(sample), now=timezone.now(), max_future_skew=timedelta(seconds=300))
        assert isinstance(checked, SampleIn), checked


def test_simulated_power_follows_cpu_load_and_the_inlet_stays_in_a_cold_aisles_range():
    start = time.time() - 3600
    model = MetricModel(random.Random(11), now=start)
    samples = [model.sample(hostname="sim-r01-h01", now=start + 10 * i) for i in range(360)]
    cpu = [s["cpu_load"] for s in samples]
    watts = [s["power_watts"] for s in samples]
    # idle + k * cpu: the fit through the readings gives back the model's own k and idle draw.
    mean_cpu, mean_watts = sum(cpu) / len(cpu), sum(watts) / len(watts)
    slope = sum((c - mean_cpu) * (w - mean_watts) for c, w in zip(cpu, watts, strict=True)) / sum(
        (c - mean_cpu) ** 2 for c in cpu
    )
    assert slope == pytest.approx(model.watts_per_percent, rel=0.1)
    assert mean_watts - slope * mean_cpu == pytest.approx(model.idle_watts, abs=10)
    inlet = [s["inlet_temp_celsius"] for s in samples]
    assert all(17 <= t <= 28 for t in inlet)
    assert all(abs(b - a) < 0.5 for a, b in itertools.pairwise(inlet))


def test_the_fabric_gives_each_rack_two_tors_linked_to_every_spine_and_each_host_to_both():
    slots = fleet_layout(hosts=100, racks=3)
    topology = fabric_topology(slots, spines=4)
    roles = {s["name"]: s["role"] for s in topology["switches"]}
    assert sorted(roles.values()).count("leaf") == 6 and list(roles.values()).count("spine") == 4
    assert roles["core-switch"] == "core" and "position" not in topology["switches"][0]
    links = {(link["source"], link["target"]): link for link in topology["links"]}
    assert len(links) == len(topology["links"]) == 4 + 4 * 6 + 2 * 100
    for slot in slots:
        rack = int(slot.rack.rsplit("R", 1)[1])
        tor_a, tor_b = f"sim-r{rack:02d}-tor-a", f"sim-r{rack:02d}-tor-b"
        assert links[(tor_a, slot.hostname)]["targetInterface"] == "eth0"
        assert links[(tor_b, slot.hostname)]["targetInterface"] == "eth1"
    tors = [n for n, r in roles.items() if r == "leaf"]
    assert all((f"sim-spine-{i}", tor) in links for i in range(1, 5) for tor in tors)
    # A ToR stands on top of its rack.
    rack_spot = {(s.position["x"], s.position["z"]) for s in slots if s.rack == "SIM-R01"}
    tor = next(s for s in topology["switches"] if s["name"] == "sim-r01-tor-a")
    assert {(tor["position"]["x"], tor["position"]["z"])} == rack_spot and tor["position"]["y"] > 2.0


@pytest.mark.django_db
def test_the_server_loads_the_simulated_fabric_and_the_hosts_uplinks_move_to_their_tors():
    slots = fleet_layout(hosts=12, racks=2)
    Host.objects.get_or_create(hostname="core-switch", defaults={"is_virtual": True, "role": FabricRole.CORE})
    for slot in slots:
        Host.objects.create(hostname=slot.hostname)
    topology = fabric_topology(slots, spines=2)
    result = topology_import(body=orjson.dumps(topology))
    assert (result.switches_created, result.links_created) >= (2 + 4, 2 + 2 * 4 + 2 * 12)
    host_links = Link.objects.filter(target__hostname="sim-r01-h01").values_list("source__hostname", flat=True)
    assert sorted(host_links) == ["sim-r01-tor-a", "sim-r01-tor-b"]
    assert not topology_import(body=orjson.dumps(topology)).changed


def test_a_fabric_host_reports_two_nics_whose_counters_sum_to_its_totals():
    start = time.time() - 600
    model = MetricModel(random.Random(5), now=start, nics=2, mac_base=7)
    samples = [model.sample(hostname="sim-r01-h01", now=start + 10 * i) for i in range(30)]
    for before, after in itertools.pairwise(samples):
        for key, total in (("tx_bytes", "net_bytes_tx"), ("rx_bytes", "net_bytes_rx")):
            assert sum(i[key] for i in after["interfaces"]) == after[total]
            assert all(a[key] > b[key] for a, b in zip(after["interfaces"], before["interfaces"], strict=True))
    first, last = samples[0]["interfaces"], samples[-1]["interfaces"]
    assert [i["name"] for i in last] == ["eth0", "eth1"] and len({i["mac"] for i in last}) == 2
    moved = [last[n]["tx_bytes"] - first[n]["tx_bytes"] for n in range(2)]
    assert moved[0] != moved[1]  # each link carries its own share
    checked = sample_validate(sample_bytes(samples[-1]), now=timezone.now(), max_future_skew=timedelta(seconds=300))
    assert isinstance(checked, SampleIn) and [i.name for i in checked.interfaces] == ["eth0", "eth1"]


def test_a_fleet_larger_than_the_server_carries_is_warned_of_with_the_measured_capacity_and_an_interval_that_fits():
    assert capacity_warning(hosts=300, interval=10) is None
    warning = capacity_warning(hosts=5000, interval=10)
    assert warning is not None
    assert "500 signed batches/s" in warning and f"stored {SERVER_BATCHES_PER_SECOND:g} a second" in warning
    assert (
        "bench/results.md" in warning
        and "--interval 40 fits (with the server's TWIN_STALE_AFTER_SECONDS at 120" in warning
    )
    assert capacity_warning(hosts=5000, interval=interval_fitting(hosts=5000)) is None


def test_the_demo_picks_an_interval_that_fits_and_stale_limits_that_follow_it():
    assert demo_plan(hosts=300, interval="auto") == (10.0, 30.0, 120.0)
    assert demo_plan(hosts=5000, interval="auto") == (40.0, 120.0, 480.0)
    assert demo_plan(hosts=5000, interval="10") == (10.0, 30.0, 120.0)


@pytest.fixture
def fake_twin():
    twin = FakeTwin().start()
    yield twin
    twin.stop()


def fleet_against(twin: FakeTwin, tmp_path, **kw) -> Fleet:
    kw.setdefault("silence", 0.0)
    kw.setdefault("workers", 4)
    return Fleet(server=twin.url, interval=kw.pop("interval", 0.2), state_dir=tmp_path / "sim", **kw)


def test_simulated_hosts_run_commands_through_the_agents_runner_and_never_a_real_shell(fake_twin, tmp_path):
    fleet = fleet_against(fake_twin, tmp_path, hosts=3, racks=1)
    fleet.enroll(enrollment_key="unused-by-the-fake")
    marker = tmp_path / "ran"
    ping = fake_twin.invocation_add("sim-r01-h01", 1, "ping")
    interval = fake_twin.invocation_add("sim-r01-h02", 2, "set-interval", {"seconds": 5})
    shell = fake_twin.invocation_add("sim-r01-h03", 3, "shell", {"command": f"touch {marker}"})
    restart = fake_twin.invocation_add("sim-r01-h01", 4, "restart-agent")

    stats = fleet.run(duration=3)

    assert stats.commands == 4
    assert ping.posts[-1]["status"] == "succeeded" and "agentTime" in ping.posts[-1]["data"]
    assert interval.posts[-1]["data"] == {"intervalSeconds": 5} and fleet.hosts[1].interval == 5
    assert shell.posts[-1]["data"] == {"refused": "not_allowed"} and not marker.exists()
    assert restart.posts[-1]["status"] == "succeeded"
    sessions = {b["agent_session"] for b in fake_twin.batches if b["host"] == "sim-r01-h01"}
    assert len(sessions) == 2  # the restarted host came back with a new session
    fleet.close()


def test_an_allowed_simulated_shell_answers_without_running_anything(fake_twin, tmp_path):
    fleet = fleet_against(fake_twin, tmp_path, hosts=1, racks=1, allow=("shell",))
    fleet.enroll(enrollment_key="unused-by-the-fake")
    marker = tmp_path / "ran"
    shell = fake_twin.invocation_add("sim-r01-h01", 1, "shell", {"command": f"touch {marker}"})
    fleet.run(duration=1)
    assert shell.posts[-1]["status"] == "succeeded"
    assert shell.posts[-1]["output"] == f"[simulated on sim-r01-h01] $ touch {marker}\n"
    assert not marker.exists()
    fleet.close()


def test_hosts_go_silent_and_come_back_with_what_they_spooled(fake_twin, tmp_path, monkeypatch):
    monkeypatch.setattr(simulate, "SILENCE_SECONDS", (0.6, 1.0))
    fleet = fleet_against(fake_twin, tmp_path, hosts=20, racks=2, silence=0.3, seed=3)
    fleet.enroll(enrollment_key="unused-by-the-fake")
    stats = fleet.run(duration=4)

    by_host: dict[str, list] = {}
    for batch in fake_twin.batches:
        by_host.setdefault(batch["host"], []).append(batch)
    gaps = {host: max(len(b["samples"]) for b in batches) for host, batches in by_host.items() if len(batches) > 1}
    assert len(by_host) == 20 and stats.errors == 0
    assert any(n > 1 for n in gaps.values())  # a "cut" host sent its backlog in one batch when it came back
    silent_spells = []
    for batches in by_host.values():
        moments = sorted(datetime.fromisoformat(s["timestamp"]).timestamp() for b in batches for s in b["samples"])
        silent_spells += [b - a for a, b in itertools.pairwise(moments) if b - a >= 0.55]
    assert silent_spells  # a "down" host sent nothing for a while, then resumed
    fleet.close()


def _queued(fleet: Fleet, samples: int) -> None:
    for host in fleet.hosts:
        for _ in range(samples):
            fleet.sample_add(host, time.time())


def test_a_stop_says_it_is_flushing_the_queue_and_sends_it(fake_twin, tmp_path):
    said: list[str] = []
    fleet = fleet_against(fake_twin, tmp_path, hosts=4, racks=1, say=said.append)
    fleet.enroll(enrollment_key="unused-by-the-fake")
    _queued(fleet, 3)
    fleet.stop()
    fleet.run(duration=5)
    assert said[0].startswith("stopping: flushing 4 hosts' queued batches (12 samples), for at most 10 s")
    assert said[0].endswith("Ctrl-C again to drop them")
    assert said[1].startswith("flushed in ") and fleet.spool.depth() == 0
    assert sum(len(b["samples"]) for b in fake_twin.batches) == 12
    fleet.close()


def test_a_second_stop_drops_the_queue_and_leaves_it_in_the_spool(fake_twin, tmp_path):
    said: list[str] = []
    fleet = fleet_against(fake_twin, tmp_path, hosts=4, racks=1)
    fleet.say = lambda line: (said.append(line), fleet.stop())  # Ctrl-C again on reading the first line
    fleet.enroll(enrollment_key="unused-by-the-fake")
    _queued(fleet, 3)
    fleet.stop()
    fleet.run(duration=5)
    assert said[0].startswith("stopping: flushing 4 hosts' queued batches")
    assert said[1] == "dropping the queue: 12 samples stay in the spool for the next run"
    assert fleet.spool.depth() == 12 and not fake_twin.batches
    fleet.close()


@pytest.mark.e2e
def test_the_simulator_drives_a_live_twin_through_the_real_endpoints(
    transactional_db, django_db_serialized_rollback, tmp_path, channel_prefix
):
    server = server_start(tmp_path, CHANNEL_LAYER_PREFIX=channel_prefix, TWIN_AGENT_AUTH="signed")
    try:
        err = io.StringIO()
        call_command(
            "simulate_fleet",
            server=server.url,
            hosts=30,
            racks=3,
            interval=1,
            duration=4,
            silence=0,
            state_dir=tmp_path / "sim",
            progress_every=1,
            stderr=err,
        )
    finally:
        server_stop(server)

    output = err.getvalue()
    assert "enrolled 30 hosts" in output
    assert "fleet    30/30 online" in output, output
    assert "errors 0" in output and "0 samples left in the spool" in output
    hosts = Host.objects.filter(hostname__startswith="sim-", is_virtual=False)
    assert hosts.count() == 30
    assert set(hosts.values_list("rack__name", flat=True)) == {"SIM-R01", "SIM-R02", "SIM-R03"}
    assert all(h.position_y is not None and h.position_z >= 3 for h in hosts)
    samples = Sample.objects.filter(host__in=hosts).count()
    assert samples >= 30 * 3
    # Every sample in one recorded batch (a host that fell behind sends two or three in one).
    receipts = BatchReceipt.objects.filter(reporter__startswith="sim-")
    assert receipts.aggregate(total=Sum("accepted"))["total"] == samples
    per_host = [Sample.objects.filter(host=h).count() for h in hosts]
    assert min(per_host) >= 3 and math.isclose(sum(per_host), samples)
    # The fabric: two ToRs a rack, four spines, each host on both ToRs by its own NICs, with their counters.
    assert "the fabric: 11 switches" in output, output
    assert Host.objects.filter(role=FabricRole.LEAF, hostname__startswith="sim-r").count() == 6
    uplinks = Link.objects.filter(target__in=hosts).select_related("source", "target", "target_interface")
    first = {
        (link.source.hostname, link.target_interface.name) for link in uplinks if link.target.hostname == "sim-r01-h01"
    }
    assert first == {("sim-r01-tor-a", "eth0"), ("sim-r01-tor-b", "eth1")}
    assert uplinks.count() == 60 and InterfaceCounters.objects.filter(interface__host__in=hosts).count() == 60


def test_twin_agent_simulate_writes_the_fabric_for_topology_import_and_warns_of_a_big_fleet(fake_twin, tmp_path):
    parser = argparse.ArgumentParser()
    simulate.simulate_arguments(parser)
    topology_file = tmp_path / "fabric.json"
    arguments = ["--server", fake_twin.url, "--hosts", "6", "--racks", "2", "--interval", "0.01", "--duration", "0.5"]
    arguments += ["--silence", "0", "--state-dir", str(tmp_path / "sim"), "--topology-out", str(topology_file)]
    options = vars(parser.parse_args(arguments))
    said: list[str] = []
    simulate.simulate_run(options, enrollment_key="unused-by-the-fake", out=said.append, progress=lambda line: None)
    assert said[0].startswith("warning: 6 hosts at one sample every 0.01 s send 600 signed batches/s")
    assert any(line.startswith(f"the fabric's topology: {topology_file}") for line in said)
    document = orjson.loads(topology_file.read_bytes())
    assert document == fabric_topology(fleet_layout(hosts=6, racks=2), spines=4)
