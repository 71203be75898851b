"""The paths between two nodes of the twin as it is, each hop with its live traffic: ``GET /api/twin/path``."""

from __future__ import annotations

from itertools import pairwise
from typing import TypedDict

from django.conf import settings

from common.errors import Refused
from fabric.paths import PATHS_MAX, paths_shortest
from hosts.schema import hostname_normalize
from hosts.selectors import hostnames_marked_failed
from twin.fabric import fabric_of, nodes_failed
from twin.snapshot import gc_paused, snapshot_build

# "from" is a Python keyword: the functional form keeps the documents' keys.
HopDoc = TypedDict(
    "HopDoc",
    {"from": str, "to": str, "link": str, "source": str, "target": str, "throughputGbps": float, "utilization": float},
)
HopDoc.__doc__ = """One link of a path in the direction of travel (``from`` -> ``to``): the link's id, its own ends
and its live traffic, as in the twin-state document."""

PathDoc = TypedDict(
    "PathDoc",
    {"generatedAt": str, "from": str, "to": str, "paths": list[list[HopDoc]], "reason": str | None},
)
PathDoc.__doc__ = """The shortest paths from ``from`` to ``to`` over working switches (at most 64), each a list of
hops. No path (an end has failed, or every way runs through a failed node) is an empty ``paths`` with ``reason``
saying why; ``reason`` is null otherwise."""


class PathRefused(Refused):
    """A path asked between nodes the twin does not hold, or from a node to itself."""

    def __init__(self, detail: str, *, parameter: str) -> None:
        super().__init__("invalid_path", detail, fields={"parameter": parameter})


def path_find(*, source: str | None, target: str | None) -> PathDoc:
    """The shortest paths from ``source`` to ``target`` (default: the core) on the live twin, each hop with its traffic.

    1. Check the names: ``from`` given, each a node of the twin, not the same.
    2. Build the live twin-state document; what has failed (``twin.fabric.nodes_failed``) is left out.
    3. ``fabric.paths.paths_shortest``; each hop is the twin-state link between its ends.
    """
    if not source:
        raise PathRefused("Name the node to start from: ?from=<node>.", parameter="from")
    start = hostname_normalize(source) or source
    end = hostname_normalize(target) or target if target else settings.TWIN_CORE_HOSTNAME
    with gc_paused():
        state = snapshot_build()
    hosts = state["hosts"]
    index = {h["hostname"]: i for i, h in enumerate(hosts)}
    for name, parameter in ((start, "from"), (end, "to")):
        if name not in index:
            raise PathRefused(f"No node named {name[:253]!r} in the twin.", parameter=parameter)
    if start == end:
        raise PathRefused(f"from and to are both {start!r}: a path needs two nodes.", parameter="to")
    fabric = fabric_of(hosts=hosts, links=state["links"])
    failed = nodes_failed(hosts=hosts, marked=hostnames_marked_failed())
    paths = paths_shortest(fabric, source=index[start], target=index[end], failed=failed, limit=PATHS_MAX)
    reason = None
    if not paths:
        down = [name for name in (start, end) if index[name] in failed]
        reason = f"{down[0]} has failed." if down else f"No path from {start} to {end} avoids the failed nodes."
    by_ends = {(link["source"], link["target"]): link for link in state["links"]}
    names = fabric.names

    def hop(a: str, b: str) -> HopDoc:
        link = by_ends.get((a, b)) or by_ends[(b, a)]
        return {
            "from": a,
            "to": b,
            "link": link["id"],
            "source": link["source"],
            "target": link["target"],
            "throughputGbps": link["throughputGbps"],
            "utilization": link["utilization"],
        }

    return {
        "generatedAt": state["generatedAt"],
        "from": start,
        "to": end,
        "paths": [[hop(names[a], names[b]) for a, b in pairwise(path)] for path in paths],
        "reason": reason,
    }
