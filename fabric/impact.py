"""What failing some nodes would do: who loses the core, who loses an uplink, which links then run hot."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from fabric.reachability import UNREACHED, Fabric, Reach, reachability_compute, uplinks_of

HOT_UTILIZATION = 0.9


@dataclass(frozen=True, slots=True)
class LinkLoad:
    """A link as the impact reads it: its ends, its traffic now and its line rate."""

    id: str
    source: str
    target: str
    throughput_gbps: float
    capacity_gbps: float


@dataclass(frozen=True, slots=True)
class LinkProjection:
    """A link that would carry more: its traffic now and projected, as Gbit/s and as a share of its capacity."""

    link: LinkLoad
    projected_gbps: float

    @property
    def utilization(self) -> float:
        return min(1.0, self.link.throughput_gbps / self.link.capacity_gbps)

    @property
    def projected_utilization(self) -> float:
        return self.projected_gbps / self.link.capacity_gbps

    @property
    def hot(self) -> bool:
        return self.projected_utilization > HOT_UTILIZATION


@dataclass
class Impact:
    """The answer: hosts that lose every path to the core, hosts and switches left with fewer uplinks, busier links."""

    failed: list[str]
    lost: list[str] = field(default_factory=list)
    degraded: list[str] = field(default_factory=list)
    degraded_switches: list[str] = field(default_factory=list)
    links: list[LinkProjection] = field(default_factory=list)


def impact_compute(
    fabric: Fabric, *, links: Sequence[LinkLoad], failed_now: Iterable[int] = (), fail: Iterable[int]
) -> Impact:
    """Fail ``fail`` on top of what has failed already (``failed_now``) and compare.

    1. Reachability before (``failed_now``) and after (``failed_now`` + ``fail``).
    2. Lost: hosts reached before and not after; degraded: nodes still
       reached with fewer live uplinks than before (hosts, then switches).
    3. Traffic: each link from a failed node down to a node still reached
       (one of that node's uplinks) carried its traffic; it is spread in equal
       shares over the node's remaining uplinks, whose projected utilization
       is reported (``hot`` above 90 %). One tier only: what those uplinks
       pass on further up is not re-spread again.
    All in O(nodes + links).
    """
    before_failed = set(failed_now)
    failing = set(fail) - before_failed
    before = reachability_compute(fabric, failed=before_failed)
    after = reachability_compute(fabric, failed=before_failed | failing)
    names, core = fabric.names, fabric.core
    impact = Impact(failed=sorted(names[i] for i in failing))
    # Step 2 over every node at once (numpy): a loop in Python was a third of an impact at 10,000 hosts.
    was, now = np.array(before.distance), np.array(after.distance)
    kept = was != UNREACHED
    kept[list(failing)] = False
    lost = kept & (now == UNREACHED) & fabric.hosts
    fewer = kept & (now != UNREACHED) & (np.array(after.uplinks) < np.array(before.uplinks))
    if core is not None:
        fewer[core] = False
    impact.lost = sorted(names[i] for i in np.flatnonzero(lost).tolist())
    impact.degraded = sorted(names[i] for i in np.flatnonzero(fewer & fabric.hosts).tolist())
    impact.degraded_switches = sorted(names[i] for i in np.flatnonzero(fewer & ~fabric.hosts).tolist())
    impact.links = _traffic_respread(fabric, links, failing, before, after)
    return impact


def _traffic_respread(
    fabric: Fabric, links: Sequence[LinkLoad], failing: set[int], before: Reach, after: Reach
) -> list[LinkProjection]:
    """Spread each failed node's downward traffic over the remaining uplinks of the nodes it served.

    Only the failed nodes' own links are walked (``Fabric.neighbours_of``).
    A link is found through the graph's edge between its ends, whose payload
    is its position in the links the fabric was built from: when ``links``
    is that same list (as ``twin.impact`` passes it) no index of every link
    is built, which was most of an impact's time at 10,000 hosts
    (bench/fabric.py). Otherwise, links are found by their ends' names.
    """
    names, graph = fabric.names, fabric.graph
    by_ends: dict[tuple[str, str], LinkLoad] = {}

    def between(a: int, b: int, position: int | None) -> LinkLoad | None:
        """The link between ``a`` and ``b``: at ``position`` in ``links`` if it is that link, else by name."""
        if position is not None and position < len(links):
            link = links[position]
            if {link.source, link.target} == {names[a], names[b]}:
                return link
        if not by_ends:
            by_ends.update(((link.source, link.target), link) for link in links)
        return by_ends.get((names[a], names[b])) or by_ends.get((names[b], names[a]))

    added: dict[str, float] = {}
    loads: dict[str, LinkLoad] = {}
    for down in sorted(failing):
        for below in dict.fromkeys(fabric.neighbours_of(down)):
            # Only the failed node's links to nodes it served as an uplink, still reached by other ways.
            if below in failing or not after.reachable(below) or before.distance[below] <= before.distance[down]:
                continue
            # One call for every link into ``below`` from a switch (its uplinks, the failed one among them).
            into = {source: position for source, _, position in graph.in_edges(below)}
            link = between(down, below, into.get(down))
            if link is None or link.throughput_gbps <= 0:
                continue
            remaining = uplinks_of(fabric, after, below)
            share = link.throughput_gbps / len(remaining)
            for up in remaining:
                other = between(below, up, into.get(up))
                if other is not None:
                    added[other.id] = added.get(other.id, 0.0) + share
                    loads[other.id] = other
    projections = [
        LinkProjection(link=loads[i], projected_gbps=loads[i].throughput_gbps + extra) for i, extra in added.items()
    ]
    projections.sort(key=lambda p: (-p.projected_utilization, p.link.id))
    return projections
