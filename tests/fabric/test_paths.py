"""fabric.paths: shortest paths over working switches, against the reachability it must agree with."""

from __future__ import annotations

from hypothesis import given

from fabric.paths import paths_shortest
from fabric.reachability import reachability_compute
from tests.fabric.test_reachability import _at, _fabric, _fabrics


def _named(fabric, paths):
    return [[fabric.names[i] for i in path] for path in paths]


def test_a_host_on_one_tor_has_one_path_per_spine():
    fabric = _fabric()
    (h, core) = _at(fabric, "h-1a", "core-switch")
    assert _named(fabric, paths_shortest(fabric, source=h, target=core)) == [
        ["h-1a", "leaf-1", "spine-1", "core-switch"],
        ["h-1a", "leaf-1", "spine-2", "core-switch"],
    ]


def test_no_path_runs_through_a_failed_node_or_from_one():
    fabric = _fabric()
    h, core, spine, leaf = _at(fabric, "h-1a", "core-switch", "spine-1", "leaf-1")
    assert _named(fabric, paths_shortest(fabric, source=h, target=core, failed={spine})) == [
        ["h-1a", "leaf-1", "spine-2", "core-switch"]
    ]
    assert paths_shortest(fabric, source=h, target=core, failed={leaf}) == []
    assert paths_shortest(fabric, source=leaf, target=core, failed={leaf}) == []


@given(_fabrics())
def test_a_node_has_a_path_to_the_core_exactly_when_it_is_reachable_and_as_long_as_its_distance(case):
    fabric, failed = case
    reach = reachability_compute(fabric, failed=failed)
    for node in range(len(fabric.names)):
        if node == fabric.core:
            continue
        paths = paths_shortest(fabric, source=node, target=fabric.core, failed=failed)
        assert bool(paths) == reach.reachable(node), fabric.names[node]
        for path in paths:
            assert len(path) - 1 == reach.distance[node]
            assert not set(path) & failed
            assert all(fabric.transit[i] for i in path[1:-1])
