"""Which nodes the core can reach, and over how many uplinks: rustworkx and numpy, O(nodes + links).

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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import rustworkx as rx

UNREACHED = -1


@dataclass(frozen=True, slots=True)
class Fabric:
    """The graph, by node index: names, which nodes forward (switches), the core, and the links.

    ``graph`` is a rustworkx directed graph over the node indexes (each
    node's payload its index) with an edge ``a -> b`` for each link whose end
    ``a`` forwards (a switch or the core), its payload the link's position in
    the links given to ``Fabric.of``: a search from the core then never
    leaves a host, the "hosts do not forward" rule held by the graph itself. ``ends`` is each link twice,
    ``(node, neighbour)`` both ways, in link order, as two integer arrays: the
    uplink counts are one vectorised pass over it (bench/fabric.py), with
    ``forwards`` (switches and the core) and ``hosts`` as boolean arrays.
    """

    names: list[str]
    transit: list[bool]
    core: int | None
    graph: rx.PyDiGraph
    ends: tuple[np.ndarray, np.ndarray]
    forwards: np.ndarray
    hosts: np.ndarray

    @classmethod
    def of(
        cls, *, names: Sequence[str], transit: Sequence[bool], core: str, links: Iterable[tuple[str, str]]
    ) -> Fabric:
        """The fabric of these nodes and the links among them (links to unknown names are left out)."""
        index = {name: i for i, name in enumerate(names)}
        core_index = index.get(core)
        forwards = np.array(transit, dtype=bool)
        if core_index is not None:
            forwards[core_index] = True
        # The name lookups are the one loop in Python; the rest is numpy (Fabric.of runs at every snapshot).
        get = index.get
        # One flat list of ints: numpy reads it twice as fast as a list of pairs.
        looked_up = np.array([get(end, -1) for link in links for end in link], dtype=np.int64).reshape(-1, 2)
        kept = (looked_up >= 0).all(axis=1) & (looked_up[:, 0] != looked_up[:, 1])
        pairs, position = looked_up[kept], np.flatnonzero(kept)
        # Both directions of each link, side by side: (s, t), (t, s), in link order.
        both = np.stack([pairs, pairs[:, ::-1]], axis=1).reshape(-1, 2)
        positions = np.repeat(position, 2)
        leaving = forwards[both[:, 0]]
        graph = rx.PyDiGraph()
        graph.add_nodes_from(range(len(names)))
        graph.add_edges_from(
            list(zip(both[leaving, 0].tolist(), both[leaving, 1].tolist(), positions[leaving].tolist(), strict=True))
        )
        return cls(
            names=list(names),
            transit=list(transit),
            core=core_index,
            graph=graph,
            ends=(both[:, 0], both[:, 1]),
            forwards=forwards,
            hosts=~np.array(transit, dtype=bool),
        )

    @property
    def neighbours(self) -> list[list[int]]:
        """Each node's neighbours, a link each, in link order: built on each call (O(links)), for readers and tests."""
        out: list[list[int]] = [[] for _ in self.names]
        for a, b in zip(self.ends[0].tolist(), self.ends[1].tolist(), strict=True):
            out[a].append(b)
        return out

    def neighbours_of(self, node: int) -> list[int]:
        """One node's neighbours, a link each, in link order."""
        return self.ends[1][self.ends[0] == node].tolist()


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


def graph_without(fabric: Fabric, failed: Iterable[int]) -> rx.PyDiGraph:
    """The fabric's graph with the failed nodes taken out (a copy; node indexes stay those of ``fabric.names``)."""
    down = list(failed)
    if not down:
        return fabric.graph
    graph = fabric.graph.copy()
    graph.remove_nodes_from(down)
    return graph


def reachability_compute(fabric: Fabric, *, failed: Iterable[int] = ()) -> Reach:
    """Breadth-first from the core over nodes that are not failed, expanding only through switches.

    1. A failed core reaches nothing.
    2. rustworkx's breadth-first layers from the core over the graph without
       the failed nodes (whose edges leave switches only, so hosts forward
       nothing): each node's layer is its distance.
    3. Each reached node's uplinks, over every link end at once: its reached
       neighbours that forward, nearer the core (a host's: every reached
       switch it is linked to).
    """
    count = len(fabric.names)
    down = set(failed)
    core = fabric.core
    if core is None or core in down:
        return Reach(distance=[UNREACHED] * count, uplinks=[0] * count)
    distance = np.full(count, UNREACHED, dtype=np.int64)
    for step, layer in enumerate(rx.bfs_layers(graph_without(fabric, down), [core])):
        distance[layer] = step
    node, other = fabric.ends
    here, there = distance[node], distance[other]
    counted = (here > 0) & (there != UNREACHED) & fabric.forwards[other] & (fabric.hosts[node] | (there < here))
    uplinks = np.bincount(node[counted], minlength=count)
    return Reach(distance=distance.tolist(), uplinks=uplinks.tolist())


def uplinks_of(fabric: Fabric, reach: Reach, node: int) -> list[int]:
    """The neighbours a reached node's traffic to the core can take: reached switches (or the core) nearer the core.

    A host forwards for no one, so every reached switch it is linked to is
    one of its uplinks, whatever its distance (a ToR beside a leftover link
    to the core). The graph's predecessors of a node are exactly its
    neighbours that forward (a link each).
    """
    distance = reach.distance
    here = distance[node]
    if here <= 0:
        return []
    host = not fabric.transit[node]
    return [
        other
        for other in fabric.graph.predecessor_indices(node)
        if distance[other] != UNREACHED and (host or distance[other] < here)
    ]


def causes_compute(fabric: Fabric, reach: Reach, *, failed: Iterable[int]) -> dict[int, list[int]]:
    """For each node the core cannot reach (and not failed itself), the failed nodes that cut it off, by index.

    The failed nodes around the unreached part of the fabric that holds the
    node: a host behind a failed ToR names the ToR; a host behind a working ToR
    whose spines all failed names those spines. Without the failures the node
    would be reached (it lies next to a failed node through working switches);
    an unreached node with no failed node around it (an island, no core) names
    none and is left out.

    1. Group the unreached, not failed switches into islands (rustworkx's
       weakly connected components of the graph on them), each with the
       failed nodes next to it.
    2. Each unreached node's causes: its failed neighbours and those of the
       islands of its unreached switch neighbours, sorted, nearest the core
       first (hops when nothing fails), then by index.
    All in O(nodes + links); the Python loops walk only the link ends of the part cut off.
    """
    down = set(failed)
    if not down:
        return {}
    count = len(fabric.names)
    transit = fabric.transit
    is_down = np.zeros(count, dtype=bool)
    is_down[list(down)] = True
    cut = (np.array(reach.distance, dtype=np.int64) == UNREACHED) & ~is_down
    island = np.full(count, UNREACHED, dtype=np.int64)
    switches = [i for i in np.flatnonzero(cut).tolist() if transit[i]]
    part = fabric.graph.subgraph(switches)
    for number, members in enumerate(rx.weakly_connected_components(part)):
        # A subgraph renumbers its nodes; each node's payload is its index in the fabric (``Fabric.of``).
        island[[part[m] for m in members]] = number
    node, other = fabric.ends
    beside_failed = cut[node] & is_down[other]
    borders: dict[int, set[int]] = {}
    found: dict[int, set[int]] = {}
    for a, b in zip(node[beside_failed].tolist(), other[beside_failed].tolist(), strict=True):
        found.setdefault(a, set()).add(b)
        if island[a] != UNREACHED:
            borders.setdefault(int(island[a]), set()).add(b)
    beside_island = cut[node] & (island[other] != UNREACHED)
    for a, b in zip(node[beside_island].tolist(), island[other[beside_island]].tolist(), strict=True):
        found.setdefault(a, set()).update(borders.get(b, ()))
    for a in np.flatnonzero(cut & (island != UNREACHED)).tolist():
        found.setdefault(a, set()).update(borders.get(int(island[a]), ()))
    healthy = reachability_compute(fabric).distance
    return {
        n: sorted(causes, key=lambda i: (healthy[i] if healthy[i] >= 0 else len(healthy), i))
        for n, causes in sorted(found.items())
        if causes
    }
