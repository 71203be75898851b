"""The twin-state document: what ``GET /api/twin/state`` returns and Socket.IO pushes.

Built from two queries whatever the size of the fleet (hosts with their rack
and values; links): now, each host's latest values; at a past time, its values
as of then, read from the history (``metrics.history.host_rows_at``). Status is
derived here from each host's last contact and the clock; link throughput was
derived from two counter readings (``metrics.rates``: at ingest for the latest
values, from the history's readings for a past time) and is read as given.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NotRequired, TypedDict

from django.conf import settings
from django.utils import timezone

from common.formats import iso_utc
from fabric.reachability import Fabric, Reach
from facility.layout import host_floor_positions
from hosts.selectors import link_rows
from metrics.fields import METRIC_FIELDS
from metrics.history import host_rows_at
from metrics.selectors import HOST_ROW, host_rows, interface_throughputs
from twin.fabric import reachability_mark
from twin.status import HostStatus, status_clock, virtual_status


class Position(TypedDict):
    x: float
    y: float
    z: float


# A host's "metrics": one key per metric of the registry (metrics/fields.py).
# Required metrics are always there (null until reported); the others once known.
HostMetrics = TypedDict(  # type: ignore[misc]
    "HostMetrics",
    {
        f.key: ((int if f.integer else float) | None) if f.required else NotRequired[int if f.integer else float]
        for f in METRIC_FIELDS
    },
)


class HostDoc(TypedDict):
    hostname: str
    displayName: str
    ip: str | None
    status: str
    lastSeen: str | None
    agentVersion: str
    platform: str
    rack: NotRequired[str]
    metrics: HostMetrics
    position: Position
    # Added after the seed's keys: a virtual node (a switch, or a host an admin marked virtual).
    isVirtual: bool
    # Added: whether the core has a path to it over working switches, and over how many live uplinks (twin.fabric).
    reachable: bool
    redundancy: int


class LinkDoc(TypedDict):
    id: str
    source: str
    target: str
    throughputGbps: float
    utilization: float


class TwinState(TypedDict):
    type: str
    twinId: str
    generatedAt: str
    hosts: list[HostDoc]
    links: list[LinkDoc]
    # Added, in the past document only (GET /api/twin/state?at=, twin.past): the alerts firing then.
    alerts: NotRequired[list[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class SnapshotRead:
    """The document with what it was built from, for readers that need more than the document (alerts).

    ``rows[i]`` is the ``metrics.selectors.HOST_ROW`` row of ``state["hosts"][i]``
    (same order); ``fabric``, ``reach`` and ``failed`` are the graph, the
    reachability and the failed nodes' indexes behind each host's ``reachable``.
    """

    state: TwinState
    rows: list[tuple]
    fabric: Fabric
    reach: Reach
    failed: frozenset[int]


def snapshot_build(*, now: datetime | None = None, at: datetime | None = None) -> TwinState:
    """Build the whole twin-state document as of ``now``, or as it was at ``at`` (``generatedAt`` = ``at``).

    See ``snapshot_read``, which builds it.
    """
    return snapshot_read(now=now, at=at).state


def snapshot_read(*, now: datetime | None = None, at: datetime | None = None) -> SnapshotRead:
    """Build the twin-state document as of ``now`` or ``at``, and keep the rows and the fabric it came from.

    1. Read every host with its rack and latest values (one query); for a
       past time, with its values as of then (``metrics.history.host_rows_at``).
    2. Read every link (one query); for a past time, those that existed then.
    3. Derive each real host's status from its last contact, then each virtual
       node's from its neighbours (and its own reports, if a poller sends them).
    4. Take each link's throughput from the end that reports counters: the
       named interface's own counters when the link names one that reported
       (now only: the history keeps no per-interface counters), else the real
       host's total, not the virtual switch's.
    5. Each node's reachability from the core over switches that are not
       failed (an admin's mark, today's as any inventory fact; or an offline status), and its live
       uplinks (``twin.fabric``), O(nodes + links).

    A plain read, which leaves the garbage collector as it finds it: the
    callers that build for readers (the HTTP view, the live feed) hold it off
    around the build with ``gc_paused``.
    """
    if at is None:
        now = now or timezone.now()
        rows, links = host_rows(), link_rows()
    else:
        rows = host_rows_at(at=at, now=now or timezone.now())
        now = at
        links = link_rows(created_by=at)
    by_id = {row[0]: row for row in rows}
    if at is not None:
        links = [link for link in links if link[0] in by_id and link[1] in by_id]

    # Step 3 in one pass over the rows: each real host's status and last contact,
    # then its document. Virtual nodes (switches) are few: their documents get
    # status and last contact once every real host's status is known.
    status_at = status_clock(now=now)
    host_doc = _host_doc
    docs: list[HostDoc] = []
    virtual: list[tuple[int, tuple]] = []
    status: dict[int, HostStatus] = {}
    for row in rows:
        seen = row[_LAST_SEEN]
        shown = row[_LAST_SEEN_ISO] or (iso_utc(seen) if seen else None)
        if row[_IS_VIRTUAL]:
            virtual.append((len(docs), row))
            docs.append(host_doc(row, HostStatus.UNKNOWN, shown))
        else:
            status[row[0]] = host_status = status_at(seen)
            docs.append(host_doc(row, host_status, shown))
    if virtual:
        _virtual_finish(docs, virtual, status, by_id, links, status_at)
    _floor_positions_apply(rows, docs)

    named = {i for link in links for i in link[3:] if i is not None} if at is None else set()
    if named:
        measured = interface_throughputs(interface_ids=named)
        link_docs = [_link_doc_measured(by_id[s], by_id[t], cap, si, ti, measured) for s, t, cap, si, ti in links]
    else:
        link_docs = [_link_doc(by_id[s], by_id[t], cap) for s, t, cap, _, _ in links]
    marked = {row[_HOSTNAME] for row in rows if row[_FAILED]}
    fabric, reach, failed = reachability_mark(hosts=docs, links=link_docs, marked=marked)
    state: TwinState = {
        "type": "twin-state",
        "twinId": settings.TWIN_ID,
        "generatedAt": iso_utc(now),
        "hosts": docs,
        "links": link_docs,
    }
    return SnapshotRead(state=state, rows=rows, fabric=fabric, reach=reach, failed=frozenset(failed))


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Hold Python's cyclic garbage collector off while a document is built: ``with gc_paused(): snapshot_build()``.

    A 10,000-host build allocates some 50,000 dicts and lists, none in a
    cycle: the collector ran about seventy times per build, now and then a
    full pass over everything built before, for nothing to free, and that was
    most of the build's variance (median 134 ms, 110 with it held off, in
    process; bench/results.md). It runs as usual once the block is done. A
    block that found it already off (another build, on another thread) leaves
    turning it back on to the block that turned it off.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _virtual_finish(
    docs: list[HostDoc],
    virtual: list[tuple[int, tuple]],
    status: dict[int, HostStatus],
    by_id: dict[int, tuple],
    links: list[tuple[int, int, float, int | None, int | None]],
    status_at: Callable[[datetime | None], HostStatus],
) -> None:
    """Each virtual node's status from its neighbours (and its own reports), nearest the hosts first.

    A switch without a poller was last seen when its freshest neighbour was.
    A virtual node finished earlier counts as a neighbour of the later ones,
    so they are taken outward from the real hosts (``_virtual_order``): ToRs,
    then spines, then the core, which in row order (by hostname) would come
    first and find only unfinished spines around it.
    """
    virtual_ids = {row[0] for _, row in virtual}
    neighbours: dict[int, list[int]] = {v: [] for v in virtual_ids}
    for source_id, target_id, *_ in links:
        if source_id in virtual_ids:
            neighbours[source_id].append(target_id)
        if target_id in virtual_ids:
            neighbours[target_id].append(source_id)
    # Last contact of virtual nodes already finished (borrowed from a neighbour): (datetime, shown text).
    borrowed: dict[int, tuple[datetime | None, str | None]] = {}

    def seen_of(host_id: int) -> datetime | None:
        return borrowed[host_id][0] if host_id in borrowed else by_id[host_id][_LAST_SEEN]

    for index, row in _virtual_order(virtual, neighbours):
        around = neighbours[row[0]]
        own = status_at(row[_LAST_SEEN]) if row[_LAST_SEEN] else None
        status[row[0]] = virtual_status(own=own, neighbours=[status[n] for n in around if n in status])
        doc = docs[index]
        doc["status"] = status[row[0]]
        if row[_LAST_SEEN] is None:
            freshest = max((n for n in around if seen_of(n)), key=seen_of, default=None)  # type: ignore[arg-type, return-value]
            if freshest is not None:
                shown = _seen_shown(by_id, freshest, borrowed)
                borrowed[row[0]] = (seen_of(freshest), shown)
                doc["lastSeen"] = shown


def _virtual_order(virtual: list[tuple[int, tuple]], neighbours: dict[int, list[int]]) -> list[tuple[int, tuple]]:
    """Virtual nodes layer by layer outward from the real hosts (breadth-first), the rest after, in row order."""
    by_id = {row[0]: (index, row) for index, row in virtual}
    layer = [v for v in by_id if any(n not in by_id for n in neighbours[v])]
    seen = set(layer)
    ordered: list[int] = []
    while layer:
        ordered += layer
        following = []
        for v in layer:
            for n in neighbours[v]:
                if n in by_id and n not in seen:
                    seen.add(n)
                    following.append(n)
        layer = following
    ordered += [v for v in by_id if v not in seen]
    return [by_id[v] for v in ordered]


def _floor_positions_apply(rows: list[tuple], docs: list[HostDoc]) -> None:
    """Draw hosts that nobody gave a position where their rack units are (``facility.layout``).

    Agent-reported and admin positions win: only a host whose three
    coordinates are empty is moved.
    """
    laid_out = host_floor_positions()
    if not laid_out:
        return
    for row, doc in zip(rows, docs, strict=True):
        spot = laid_out.get(row[0])
        if spot is not None and row[_POSITION_X] is None and row[_POSITION_Y] is None and row[_POSITION_Z] is None:
            doc["position"] = {"x": spot[0], "y": spot[1], "z": spot[2]}


def _seen_shown(by_id: dict[int, tuple], host_id: int, borrowed: dict) -> str | None:
    """The last contact shown for ``host_id``: borrowed by a virtual node, or its own."""
    if host_id in borrowed:
        return borrowed[host_id][1]
    row = by_id[host_id]
    return row[_LAST_SEEN_ISO] or (iso_utc(row[_LAST_SEEN]) if row[_LAST_SEEN] else None)


_HOSTNAME = HOST_ROW.index("hostname")
_IS_VIRTUAL = HOST_ROW.index("is_virtual")
_LAST_SEEN = HOST_ROW.index("last_seen")
_LAST_SEEN_ISO = HOST_ROW.index("last_seen_iso")
_THROUGHPUT = HOST_ROW.index("net_throughput_gbps")
_POSITION_X, _POSITION_Y, _POSITION_Z = (HOST_ROW.index(f"position_{a}") for a in "xyz")
_FAILED = HOST_ROW.index("failed")
# A row starts with the inventory, in this order: unpacked at once, the cheapest read.
_INVENTORY = ("id", "hostname", "display_name", "ip", "agent_version", "platform", "is_virtual", "rack__name")
_INVENTORY += ("position_x", "position_y", "position_z")
assert HOST_ROW[: len(_INVENTORY)] == _INVENTORY, "metrics.selectors.HOST_ROW changed: update _host_doc"


def _host_doc_compile() -> Callable[[tuple, HostStatus, str | None], HostDoc]:
    """Compile, from the row layout and the metric registry, the function that writes a host's document.

    Keys in the seed's order, then ``isVirtual`` (an added key); ``rack`` only
    for a host that has one, optional metrics only when known. A loop over the registry cost 0.8 µs a host, and
    a dict filled key by key with a separate ``metrics`` call most of the rest
    of a 10,000-host build's Python time; compiled (as ``namedtuple`` compiles
    its class), the function is the one a person would write by hand for
    today's fields (one dict display per object), and stays right when a
    field is added. Its source comes from the row layout and the registry
    only, never from data.
    """
    i = {name: HOST_ROW.index(name) for name in _INVENTORY}
    required = ", ".join(f"{f.key!r}: row[{HOST_ROW.index(f.name)}]" for f in METRIC_FIELDS if f.required)
    lines = [
        "def host_doc(row, status, last_seen):",
        f"    hostname = row[{i['hostname']}]",
        f"    doc = {{'hostname': hostname, 'displayName': row[{i['display_name']}] or hostname,"
        f" 'ip': row[{i['ip']}], 'status': status, 'lastSeen': last_seen,"
        f" 'agentVersion': row[{i['agent_version']}], 'platform': row[{i['platform']}]}}",
        f"    rack = row[{i['rack__name']}]",
        "    if rack is not None: doc['rack'] = rack",
        f"    doc['metrics'] = metrics = {{{required}}}",
    ]
    for f in METRIC_FIELDS:
        if not f.required:
            lines += [
                f"    value = row[{HOST_ROW.index(f.name)}]",
                f"    if value is not None: metrics[{f.key!r}] = value",
            ]
    lines += [
        f"    doc['position'] = {{'x': row[{i['position_x']}] or 0.0, 'y': row[{i['position_y']}] or 0.0,"
        f" 'z': row[{i['position_z']}] or 0.0}}",
        # bool(): a raw row on SQLite holds 0 or 1.
        f"    doc['isVirtual'] = bool(row[{i['is_virtual']}])",
        "    return doc",
    ]
    namespace: dict[str, Any] = {}
    exec("\n".join(lines), namespace)
    return namespace["host_doc"]


_host_doc = _host_doc_compile()


def _link_doc(source: tuple, target: tuple, capacity: float) -> LinkDoc:
    # The real host's counters measure the link; a virtual end reports none.
    reporter = target if not target[_IS_VIRTUAL] or source[_IS_VIRTUAL] else source
    gbps = reporter[_THROUGHPUT] or 0.0
    return {
        "id": f"{source[_HOSTNAME]}::{target[_HOSTNAME]}",
        "source": source[_HOSTNAME],
        "target": target[_HOSTNAME],
        "throughputGbps": gbps,
        "utilization": min(1.0, gbps / capacity),
    }


def _link_doc_measured(
    source: tuple,
    target: tuple,
    capacity: float,
    source_interface: int | None,
    target_interface: int | None,
    measured: dict[int, float | None],
) -> LinkDoc:
    """A link that names an interface: that interface's own counters, from the end that reports them.

    The real host's interface first (as ``_link_doc`` prefers the real host),
    then the other end's; a link whose named interfaces never reported keeps
    its host's total.
    """
    real_first = target[_IS_VIRTUAL] and not source[_IS_VIRTUAL]
    ends = (source_interface, target_interface) if real_first else (target_interface, source_interface)
    interface = next((i for i in ends if i is not None and i in measured), None)
    if interface is None:
        return _link_doc(source, target, capacity)
    gbps = measured[interface] or 0.0
    return {
        "id": f"{source[_HOSTNAME]}::{target[_HOSTNAME]}",
        "source": source[_HOSTNAME],
        "target": target[_HOSTNAME],
        "throughputGbps": gbps,
        "utilization": min(1.0, gbps / capacity),
    }
