"""Which nodes the core can reach, and over how many uplinks: plain functions, O(nodes + links).

The fabric is a graph of nodes (switches and hosts) and links. Switches
(virtual nodes) carry traffic; a host does not forward for others, so a path
to the core never runs through a host. A node is *failed* when the caller says
so (an admin's mark, a switch whose status is offline, a "what if"); a path
never runs through a failed node. A host's own status is not part of its
reachability: an offline host behind working switches is reachable (the host
is its own incident), hosts behind a failed switch are not (the switch's one
incident).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

UNREACHED = -1


@dataclass(frozen=True, slots=True)
class Fabric:
    """The graph, by node index: names, which nodes forward (switches), the core, and each node's neighbours."""

    names: list[str]
    transit: list[bool]
    core: int | None
    neighbours: list[list[int]]

    @classmethod
    def of(
        cls, *, names: Sequence[str], transit: Sequence[bool], core: str, links: Iterable[tuple[str, str]]
    ) -> Fabric:
        """The fabric of these nodes and the links among them (links to unknown names are left out)."""
        index = {name: i for i, name in enumerate(names)}
        neighbours: list[list[int]] = [[] for _ in names]
        for source, target in links:
            s, t = index.get(source), index.get(target)
            if s is not None and t is not None and s != t:
                neighbours[s].append(t)
                neighbours[t].append(s)
        return cls(names=list(names), transit=list(transit), core=index.get(core), neighbours=neighbours)


@dataclass(frozen=True, slots=True)
class Reach:
    """Per node index: its hops from the core (``UNREACHED``), and its live uplinks (0 when unreachable).

    ``uplinks`` counts the node's links to up nodes that are nearer the core
    and reachable: 2 for a host on two working ToRs, 3 for a ToR that lost one
    of four spines. The core itself counts 0 (it is where paths end).
    """

    distance: list[int]
    uplinks: list[int]

    def reachable(self, node: int) -> bool:
        return self.distance[node] != UNREACHED


def reachability_compute(fabric: Fabric, *, failed: Iterable[int] = ()) -> Reach:
    """Breadth-first from the core over nodes that are not failed, expanding only through switches.

    1. A failed core reaches nothing.
    2. From the core, visit each not-failed neighbour once, at its distance;
       continue from the switches only (hosts forward nothing).
    3. Each reached node's uplinks: its reached neighbours nearer the core
       (a host's: every reached switch it is linked to).
    """
    count = len(fabric.names)
    distance = [UNREACHED] * count
    uplinks = [0] * count
    down = set(failed)
    core = fabric.core
    if core is None or core in down:
        return Reach(distance=distance, uplinks=uplinks)
    neighbours, transit = fabric.neighbours, fabric.transit
    distance[core] = 0
    queue = deque([core])
    while queue:
        node = queue.popleft()
        step = distance[node] + 1
        for other in neighbours[node]:
            if distance[other] == UNREACHED and other not in down:
                distance[other] = step
                if transit[other]:
                    queue.append(other)
    # Step 3, the rule of ``uplinks_of`` counted inline: a call and a list per node were
    # most of the time at 10,000 hosts (bench/fabric.py).
    for node in range(count):
        here = distance[node]
        if here <= 0:
            continue
        host = not transit[node]
        found = 0
        for other in neighbours[node]:
            there = distance[other]
            if there != UNREACHED and (transit[other] or other == core) and (host or there < here):
                found += 1
        uplinks[node] = found
    return Reach(distance=distance, uplinks=uplinks)


def uplinks_of(fabric: Fabric, reach: Reach, node: int) -> list[int]:
    """The neighbours a reached node's traffic to the core can take: reached switches (or the core) nearer the core.

    A host forwards for no one, so every reached switch it is linked to is
    one of its uplinks, whatever its distance (a ToR beside a leftover link
    to the core).
    """
    distance, transit, core = reach.distance, fabric.transit, fabric.core
    here = distance[node]
    if here <= 0:
        return []
    host = not transit[node]
    return [
        other
        for other in fabric.neighbours[node]
        if distance[other] != UNREACHED and (transit[other] or other == core) and (host or distance[other] < here)
    ]


def causes_compute(fabric: Fabric, reach: Reach, *, failed: Iterable[int]) -> dict[int, list[int]]:
    """For each node the core cannot reach (and not failed itself), the failed nodes that cut it off, by index.

    The failed nodes around the unreached part of the fabric that holds the
    node: a host behind a failed ToR names the ToR; a host behind a working ToR
    whose spines all failed names those spines. Without the failures the node
    would be reached (it lies next to a failed node through working switches);
    an unreached node with no failed node around it (an island, no core) names
    none and is left out.

    1. Group the unreached, not failed switches into islands (linked through
       one another), each with the failed nodes next to it.
    2. Each unreached node's causes: its failed neighbours and those of the
       islands of its unreached switch neighbours, sorted, nearest the core
       first (hops when nothing fails), then by index.
    All in O(nodes + links).
    """
    down = set(failed)
    transit, neighbours = fabric.transit, fabric.neighbours
    if not down:
        return {}
    island = [UNREACHED] * len(fabric.names)
    borders: list[set[int]] = []
    for start in range(len(fabric.names)):
        if not transit[start] or start in down or reach.reachable(start) or island[start] != UNREACHED:
            continue
        border: set[int] = set()
        island[start] = len(borders)
        queue = deque([start])
        while queue:
            node = queue.popleft()
            for other in neighbours[node]:
                if other in down:
                    border.add(other)
                elif transit[other] and island[other] == UNREACHED and not reach.reachable(other):
                    island[other] = island[start]
                    queue.append(other)
        borders.append(border)
    healthy = reachability_compute(fabric).distance
    causes: dict[int, list[int]] = {}
    for node in range(len(fabric.names)):
        if node in down or reach.reachable(node):
            continue
        found = {other for other in neighbours[node] if other in down}
        if island[node] != UNREACHED:
            found |= borders[island[node]]
        for other in neighbours[node]:
            if island[other] != UNREACHED:
                found |= borders[island[other]]
        if found:
            causes[node] = sorted(found, key=lambda i: (healthy[i] if healthy[i] >= 0 else len(healthy), i))
    return causes
