"""What failing some nodes would do: who loses the core, who loses an uplink, which links then run hot."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

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
    names, transit, core = fabric.names, fabric.transit, fabric.core
    impact = Impact(failed=sorted(names[i] for i in failing))
    was, now = before.distance, after.distance
    uplinks_was, uplinks_now = before.uplinks, after.uplinks
    for node in range(len(names)):
        if was[node] == UNREACHED or node in failing:
            continue
        if now[node] == UNREACHED:
            if not transit[node]:
                impact.lost.append(names[node])
        elif uplinks_now[node] < uplinks_was[node] and node != core:
            (impact.degraded_switches if transit[node] else impact.degraded).append(names[node])
    impact.lost.sort()
    impact.degraded.sort()
    impact.degraded_switches.sort()
    impact.links = _traffic_respread(fabric, links, failing, before, after)
    return impact


def _traffic_respread(
    fabric: Fabric, links: Sequence[LinkLoad], failing: set[int], before: Reach, after: Reach
) -> list[LinkProjection]:
    """Spread each failed node's downward traffic over the remaining uplinks of the nodes it served.

    Only the failed nodes' own links are walked (from the fabric's
    neighbours), and links are found by their ends' names: indexing every
    link by node index was most of an impact's time at 10,000 hosts
    (bench/fabric.py).
    """
    names = fabric.names
    by_ends = {(link.source, link.target): link for link in links}

    def between(a: int, b: int) -> LinkLoad | None:
        return by_ends.get((names[a], names[b])) or by_ends.get((names[b], names[a]))

    added: dict[str, float] = {}
    loads: dict[str, LinkLoad] = {}
    for down in sorted(failing):
        for below in dict.fromkeys(fabric.neighbours[down]):
            # Only the failed node's links to nodes it served as an uplink, still reached by other ways.
            if below in failing or not after.reachable(below) or before.distance[below] <= before.distance[down]:
                continue
            link = between(down, below)
            if link is None or link.throughput_gbps <= 0:
                continue
            remaining = uplinks_of(fabric, after, below)
            share = link.throughput_gbps / len(remaining)
            for up in remaining:
                other = between(below, up)
                if other is not None:
                    added[other.id] = added.get(other.id, 0.0) + share
                    loads[other.id] = other
    projections = [
        LinkProjection(link=loads[i], projected_gbps=loads[i].throughput_gbps + extra) for i, extra in added.items()
    ]
    projections.sort(key=lambda p: (-p.projected_utilization, p.link.id))
    return projections
