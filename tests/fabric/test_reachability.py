"""fabric.reachability and fabric.impact on small fabrics with known answers, and a property against brute force."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fabric.impact import LinkLoad, impact_compute
from fabric.reachability import Fabric, causes_compute, reachability_compute
from tests.fabric.fixtures import HOSTS, RACKS, SPINES, leaf_spine


def _fabric(document=None) -> Fabric:
    document = document or leaf_spine()
    switches = [s["name"] for s in document["switches"]]
    return Fabric.of(
        names=switches + HOSTS,
        transit=[True] * len(switches) + [False] * len(HOSTS),
        core="core-switch",
        links=[(link["source"], link["target"]) for link in document["links"]],
    )


def _at(fabric: Fabric, *names: str) -> list[int]:
    return [fabric.names.index(n) for n in names]


def _by_name(fabric: Fabric, values: list) -> dict[str, object]:
    return dict(zip(fabric.names, values, strict=True))


def test_every_node_of_a_working_fabric_is_reachable_with_its_uplinks():
    fabric = _fabric()
    reach = reachability_compute(fabric)
    assert all(reach.reachable(i) for i in range(len(fabric.names)))
    uplinks = _by_name(fabric, reach.uplinks)
    assert uplinks["spine-1"] == 1 and uplinks["leaf-1"] == 2 and uplinks["h-1a"] == 1
    assert _by_name(fabric, reach.distance)["h-2b"] == 3


def test_a_spine_failing_loses_redundancy_only():
    fabric = _fabric()
    impact = impact_compute(fabric, links=[], fail=_at(fabric, "spine-1"))
    assert impact.lost == []
    assert impact.degraded_switches == sorted(RACKS)
    reach = reachability_compute(fabric, failed=_at(fabric, "spine-1"))
    assert _by_name(fabric, reach.uplinks)["leaf-1"] == 1


def test_a_tor_failing_makes_its_rack_unreachable():
    fabric = _fabric()
    impact = impact_compute(fabric, links=[], fail=_at(fabric, "leaf-1"))
    assert impact.lost == RACKS["leaf-1"]
    assert impact.degraded == [] and impact.degraded_switches == []


def test_a_host_on_two_tors_loses_an_uplink_when_one_fails_and_stays_reachable():
    fabric = _fabric(leaf_spine(dual_homed="h-1a"))
    impact = impact_compute(fabric, links=[], fail=_at(fabric, "leaf-1"))
    assert impact.lost == ["h-1b"]
    assert impact.degraded == ["h-1a"]


def test_both_spines_failing_cut_every_host_off():
    fabric = _fabric()
    assert impact_compute(fabric, links=[], fail=_at(fabric, *SPINES)).lost == HOSTS


def test_a_path_never_runs_through_a_host():
    # h-1a on both ToRs; leaf-2 without spines: the host does not carry leaf-2's traffic.
    document = leaf_spine(dual_homed="h-1a")
    document["links"] = [link for link in document["links"] if link["target"] != "leaf-2"]
    reach = reachability_compute(_fabric(document))
    reachable = _by_name(_fabric(document), [reach.reachable(i) for i in range(len(reach.distance))])
    assert reachable["h-1a"] and not reachable["leaf-2"] and not reachable["h-2a"]


def test_a_failed_core_reaches_nothing():
    fabric = _fabric()
    reach = reachability_compute(fabric, failed=_at(fabric, "core-switch"))
    assert not any(reach.reachable(i) for i in range(len(fabric.names)))


def test_a_failed_spines_traffic_spreads_over_the_remaining_uplinks_and_a_full_one_runs_hot():
    fabric = _fabric()
    loads = [
        LinkLoad("spine-1::leaf-1", "spine-1", "leaf-1", throughput_gbps=60.0, capacity_gbps=100.0),
        LinkLoad("spine-2::leaf-1", "spine-2", "leaf-1", throughput_gbps=40.0, capacity_gbps=100.0),
        LinkLoad("spine-1::leaf-2", "spine-1", "leaf-2", throughput_gbps=10.0, capacity_gbps=100.0),
        LinkLoad("spine-2::leaf-2", "spine-2", "leaf-2", throughput_gbps=10.0, capacity_gbps=100.0),
    ]
    impact = impact_compute(fabric, links=loads, fail=_at(fabric, "spine-1"))
    projected = {p.link.id: (p.projected_gbps, p.hot) for p in impact.links}
    assert projected == {"spine-2::leaf-1": (100.0, True), "spine-2::leaf-2": (20.0, False)}
    assert impact.links[0].link.id == "spine-2::leaf-1"


def test_what_has_failed_already_is_the_baseline():
    fabric = _fabric()
    impact = impact_compute(fabric, links=[], failed_now=_at(fabric, "leaf-1"), fail=_at(fabric, "spine-1"))
    assert impact.lost == [] and impact.degraded_switches == ["leaf-2"]


def _reaches_core_avoiding(fabric: Fabric, node: int, failed: set[int]) -> bool:
    """Brute force: some simple path from the core to ``node`` through switches only, none failed."""
    core = fabric.core
    if core in failed or node in failed:
        return False
    stack, seen = [core], {core}
    while stack:
        here = stack.pop()
        if here == node:
            return True
        if here != core and not fabric.transit[here]:
            continue
        for other in fabric.neighbours[here]:
            if other not in seen and other not in failed:
                seen.add(other)
                stack.append(other)
    return False


@st.composite
def _fabrics(draw):
    switches = draw(st.integers(min_value=1, max_value=6))
    hosts = draw(st.integers(min_value=1, max_value=6))
    names = ["core-switch", *(f"s{i}" for i in range(switches)), *(f"h{i}" for i in range(hosts))]
    transit = [True] * (switches + 1) + [False] * hosts
    pairs = [(a, b) for a in range(len(names)) for b in range(a + 1, len(names))]
    chosen = draw(st.lists(st.sampled_from(pairs), unique=True, max_size=len(pairs)))
    fabric = Fabric.of(
        names=names, transit=transit, core="core-switch", links=[(names[a], names[b]) for a, b in chosen]
    )
    failed = draw(st.sets(st.integers(min_value=0, max_value=len(names) - 1), max_size=3))
    return fabric, failed


@given(_fabrics())
def test_a_node_is_unreachable_exactly_when_no_path_avoids_the_failed_set(case):
    fabric, failed = case
    reach = reachability_compute(fabric, failed=failed)
    for node in range(len(fabric.names)):
        assert reach.reachable(node) == _reaches_core_avoiding(fabric, node, failed), fabric.names[node]


@given(_fabrics())
def test_a_host_is_lost_exactly_when_no_path_avoids_the_failed_set(case):
    fabric, failed = case
    impact = impact_compute(fabric, links=[], fail=failed)
    expected = [
        fabric.names[n]
        for n in range(len(fabric.names))
        if not fabric.transit[n]
        and n not in failed
        and _reaches_core_avoiding(fabric, n, set())
        and not _reaches_core_avoiding(fabric, n, failed)
    ]
    assert impact.lost == sorted(expected)


def _causes(fabric: Fabric, *failed: str) -> dict[str, list[str]]:
    down = _at(fabric, *failed)
    causes = causes_compute(fabric, reachability_compute(fabric, failed=down), failed=down)
    return {fabric.names[n]: [fabric.names[c] for c in cs] for n, cs in causes.items()}


def test_the_hosts_behind_a_failed_tor_name_it_as_their_cause():
    assert _causes(_fabric(), "leaf-1") == {"h-1a": ["leaf-1"], "h-1b": ["leaf-1"]}


def test_behind_failed_spines_a_working_tor_and_its_hosts_name_the_spines_nearest_the_core_first():
    causes = _causes(_fabric(), "spine-1", "spine-2")
    assert causes["leaf-1"] == ["spine-1", "spine-2"]
    assert causes["h-2b"] == ["spine-1", "spine-2"]
    assert sorted(causes) == sorted(["leaf-1", "leaf-2", *HOSTS])


def test_a_failed_core_is_every_nodes_cause_and_nothing_failed_is_no_cause():
    fabric = _fabric()
    causes = _causes(fabric, "core-switch")
    assert len(causes) == len(fabric.names) - 1
    assert all(c == ["core-switch"] for c in causes.values())
    assert _causes(fabric) == {}
