"""The shortest paths between two nodes over working switches (rustworkx), for ``GET /api/twin/path``."""

from __future__ import annotations

from collections.abc import Iterable

import rustworkx as rx

from fabric.reachability import Fabric, graph_without

# Between two hosts of a leaf-spine fabric there are (ToRs x spines x ToRs) shortest paths, 32 on
# the simulator's; a caller asking for more is drawing a map, not reading a path.
PATHS_MAX = 64


def paths_shortest(
    fabric: Fabric, *, source: int, target: int, failed: Iterable[int] = (), limit: int = PATHS_MAX
) -> list[list[int]]:
    """Every shortest path from ``source`` to ``target`` (node indexes, both ends included), at most ``limit``.

    1. None when either end has failed.
    2. The graph without the failed nodes; a source that does not forward
       (a host) still sends its own traffic, so its links out are added.
    3. rustworkx's ``digraph_all_shortest_paths`` over it: every node between
       the ends forwards (the graph's edges leave switches only), none failed.
    4. Sorted by the names along each path, so the answer does not depend on
       the order links were stored in; the first ``limit``.
    """
    down = set(failed)
    if source in down or target in down or source == target:
        return []
    graph = graph_without(fabric, down)
    if not fabric.forwards[source]:
        graph = graph.copy() if graph is fabric.graph else graph
        graph.add_edges_from_no_data([(source, other) for other in fabric.neighbours_of(source) if other not in down])
    paths = [list(path) for path in rx.digraph_all_shortest_paths(graph, source, target)]
    names = fabric.names
    paths.sort(key=lambda path: [names[i] for i in path])
    return paths[:limit]
