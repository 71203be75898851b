"""The twin's document as a fabric: which nodes are failed, and each host's reachability from the core.

The graph work is ``fabric``'s (plain functions); this module says what in
the twin-state document is a node, a link and a failure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from django.conf import settings

from fabric.reachability import Fabric, Reach, reachability_compute
from twin.status import HostStatus


def fabric_of(*, hosts: Sequence[Mapping], links: Iterable[Mapping]) -> Fabric:
    """The fabric of twin-state host and link documents: virtual nodes (switches) forward, hosts do not."""
    return Fabric.of(
        names=[h["hostname"] for h in hosts],
        transit=[bool(h["isVirtual"]) for h in hosts],
        core=settings.TWIN_CORE_HOSTNAME,
        links=((link["source"], link["target"]) for link in links),
    )


def nodes_failed(*, hosts: Sequence[Mapping], marked: set[str]) -> set[int]:
    """The indexes of failed nodes: marked failed by an admin, or a switch whose status is offline.

    A host's own status is not a failure of the fabric (see ``fabric.reachability``).
    """
    return {
        i
        for i, h in enumerate(hosts)
        if h["hostname"] in marked or (h["isVirtual"] and h["status"] == HostStatus.OFFLINE)
    }


def reachability_mark(
    *, hosts: Sequence[dict], links: Iterable[Mapping], marked: set[str]
) -> tuple[Fabric, Reach, set[int]]:
    """Add ``reachable`` and ``redundancy`` (live uplinks) to each host document, in place.

    Returns the fabric, its reach and the failed nodes (by index), for callers that look further (alerts' causes).
    """
    fabric = fabric_of(hosts=hosts, links=links)
    failed = nodes_failed(hosts=hosts, marked=marked)
    reach = reachability_compute(fabric, failed=failed)
    distance, uplinks = reach.distance, reach.uplinks
    for i, doc in enumerate(hosts):
        doc["reachable"] = distance[i] >= 0
        doc["redundancy"] = uplinks[i]
    return fabric, reach, failed
