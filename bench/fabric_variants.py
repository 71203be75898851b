"""The other ways to do ``fabric.reachability_compute``, measured beside it by ``bench.fabric`` (issue 21, item 6).

Each variant answers what the product's function answers (a ``Reach``, the
same distances and uplink counts; ``bench.fabric`` checks it) on the
product's ``Fabric``:

- ``hand_written``: the breadth-first search the project had before rustworkx
  (a deque over Python adjacency lists, the uplinks counted in a loop), kept
  here only to be measured against;
- ``networkx``: networkx's ``single_source_shortest_path_length`` over a
  ``DiGraph`` with the same edges (switches' links only leave switches), the
  failed nodes hidden by a ``subgraph_view``, the uplinks counted by the same
  numpy pass as the product.

The product itself is rustworkx's ``bfs_layers`` over its ``PyDiGraph`` (``fabric.reachability``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

import networkx as nx
import numpy as np

from fabric.reachability import UNREACHED, Fabric, Reach

Variant = Callable[..., Reach]


def hand_written(fabric: Fabric) -> Variant:
    """The replaced code: its graph (adjacency lists, built here once) and its BFS per call."""
    neighbours, transit, core = fabric.neighbours, fabric.transit, fabric.core

    def compute(*, failed: Iterable[int] = ()) -> Reach:
        count = len(neighbours)
        distance = [UNREACHED] * count
        uplinks = [0] * count
        down = set(failed)
        if core is None or core in down:
            return Reach(distance=distance, uplinks=uplinks)
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

    return compute


def networkx_graph(fabric: Fabric) -> nx.DiGraph:
    """The fabric as a networkx ``DiGraph`` with the product's edges (what ``Fabric.of`` would build)."""
    graph = nx.DiGraph()
    graph.add_nodes_from(range(len(fabric.names)))
    graph.add_edges_from(fabric.graph.edge_list())
    return graph


def networkx(fabric: Fabric) -> Variant:
    """networkx's breadth-first lengths per call, on a graph built once."""
    graph = networkx_graph(fabric)
    node, other = fabric.ends
    forwards, host = fabric.forwards, fabric.hosts

    def compute(*, failed: Iterable[int] = ()) -> Reach:
        count = len(fabric.names)
        down = set(failed)
        if fabric.core is None or fabric.core in down:
            return Reach(distance=[UNREACHED] * count, uplinks=[0] * count)
        view = nx.subgraph_view(graph, filter_node=lambda n: n not in down) if down else graph
        distance = np.full(count, UNREACHED, dtype=np.int64)
        lengths = nx.single_source_shortest_path_length(view, fabric.core)
        distance[list(lengths)] = list(lengths.values())
        here, there = distance[node], distance[other]
        counted = (here > 0) & (there != UNREACHED) & forwards[other] & (host[node] | (there < here))
        return Reach(distance=distance.tolist(), uplinks=np.bincount(node[counted], minlength=count).tolist())

    return compute
