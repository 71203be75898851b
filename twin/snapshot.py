"""The twin-state document: what ``GET /api/twin/state`` returns and Socket.IO pushes.

Built from two queries whatever the size of the fleet (hosts with their rack
and latest values; links), never from the history. Status and throughput are
derived here from stored facts and the clock.
"""

from __future__ import annotations

from datetime import datetime
from typing import NotRequired, TypedDict

from django.conf import settings
from django.db import connection
from django.db.models import CharField, Func, QuerySet, Value
from django.utils import timezone
from psycopg.types.datetime import TimestamptzLoader

from hosts.models import Host, Link
from twin.formats import iso_utc
from twin.status import HostStatus, status_clock, virtual_status


class Position(TypedDict):
    x: float
    y: float
    z: float


class HostMetrics(TypedDict):
    cpuLoad: float | None
    memoryUsedPercent: float | None
    loadAverage: float | None
    uptimeSeconds: int | None
    netBytesTx: NotRequired[int]
    netBytesRx: NotRequired[int]


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


# One row per host: inventory, rack name and latest values, read as tuples.
# Model instances for 10,000 hosts cost more than the rest of the snapshot.
HOST_COLUMNS = (
    "id",
    "hostname",
    "display_name",
    "ip",
    "agent_version",
    "platform",
    "is_virtual",
    "rack__name",
    "position_x",
    "position_y",
    "position_z",
    "latest__last_seen",
    "latest__cpu_load",
    "latest__memory_used_percent",
    "latest__load_average",
    "latest__uptime_seconds",
    "latest__net_bytes_tx",
    "latest__net_bytes_rx",
    "latest__net_throughput_gbps",
)


def snapshot_build(*, now: datetime | None = None) -> TwinState:
    """Build the whole twin-state document as of ``now``.

    1. Read every host with its rack and latest values (one query).
    2. Read every link (one query).
    3. Derive each real host's status from its last contact, then each virtual
       node's from its neighbours (and its own reports, if a poller sends them).
    4. Take each link's throughput from the end that reports counters: the
       real host, not the virtual switch.
    """
    now = now or timezone.now()
    rows = _rows(host_rows())
    links = list(Link.objects.order_by("source_id", "target_id").values_list("source_id", "target_id", "capacity_gbps"))
    by_id = {row[0]: row for row in rows}
    neighbours: dict[int, list[int]] = {}
    for source_id, target_id, _ in links:
        neighbours.setdefault(source_id, []).append(target_id)
        neighbours.setdefault(target_id, []).append(source_id)

    status_at = status_clock(now=now)
    status: dict[int, HostStatus] = {row[0]: status_at(row[_LAST_SEEN]) for row in rows if not row[_IS_VIRTUAL]}
    last_seen: dict[int, datetime | None] = {row[0]: row[_LAST_SEEN] for row in rows}
    shown_seen: dict[int, str | None] = {
        row[0]: row[_LAST_SEEN_ISO] or (iso_utc(row[_LAST_SEEN]) if row[_LAST_SEEN] else None) for row in rows
    }
    for row in rows:
        if row[_IS_VIRTUAL]:
            around = neighbours.get(row[0], [])
            own = status_at(row[_LAST_SEEN]) if row[_LAST_SEEN] else None
            status[row[0]] = virtual_status(own=own, neighbours=[status[n] for n in around if n in status])
            if row[_LAST_SEEN] is None:
                # A switch without a poller was last seen when its freshest neighbour was.
                freshest = max((n for n in around if last_seen.get(n)), key=last_seen.__getitem__, default=None)
                if freshest is not None:
                    last_seen[row[0]], shown_seen[row[0]] = last_seen[freshest], shown_seen[freshest]

    return {
        "type": "twin-state",
        "twinId": settings.TWIN_ID,
        "generatedAt": iso_utc(now),
        "hosts": [_host_doc(row, status[row[0]], shown_seen[row[0]]) for row in rows],
        "links": [_link_doc(by_id[s], by_id[t], capacity) for s, t, capacity in links],
    }


_IS_VIRTUAL = HOST_COLUMNS.index("is_virtual")
_LAST_SEEN = HOST_COLUMNS.index("latest__last_seen")
_LAST_SEEN_ISO = len(HOST_COLUMNS)


class IsoUtc(Func):
    """A timestamp written by PostgreSQL exactly as ``iso_utc`` writes it (milliseconds, truncated).

    Python's ``isoformat`` for each of 10,000 hosts was a quarter of a
    snapshot's build (bench/analysis.md); ``to_char`` costs a few milliseconds.
    """

    template = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
    output_field = CharField()


def host_rows() -> QuerySet:
    """Each host's snapshot row: ``HOST_COLUMNS``, then its last contact as text if the database writes it."""
    hosts = Host.objects.order_by("hostname")
    if connection.vendor == "postgresql":
        hosts = hosts.annotate(last_seen_iso=IsoUtc("latest__last_seen"))
    else:
        hosts = hosts.annotate(last_seen_iso=Value(None, output_field=CharField()))
    return hosts.values_list(*HOST_COLUMNS, "last_seen_iso")


def _host_doc(row: tuple, status: HostStatus, last_seen: str | None) -> HostDoc:
    (
        _,
        hostname,
        display_name,
        ip,
        agent_version,
        platform,
        _,
        rack,
        x,
        y,
        z,
        _,
        cpu,
        memory,
        load,
        uptime,
        tx,
        rx,
        _,
        _,
    ) = row
    # Keys in the seed's order; "rack" only for a host that has one, counters only when known.
    doc: HostDoc = {
        "hostname": hostname,
        "displayName": display_name or hostname,
        "ip": ip,
        "status": status,
        "lastSeen": last_seen,
        "agentVersion": agent_version,
        "platform": platform,
    }  # type: ignore[typeddict-item]
    if rack is not None:
        doc["rack"] = rack
    metrics: HostMetrics = {"cpuLoad": cpu, "memoryUsedPercent": memory, "loadAverage": load, "uptimeSeconds": uptime}
    if tx is not None:
        metrics["netBytesTx"] = tx
    if rx is not None:
        metrics["netBytesRx"] = rx
    doc["metrics"] = metrics
    doc["position"] = {"x": x or 0.0, "y": y or 0.0, "z": z or 0.0}
    return doc


_THROUGHPUT = HOST_COLUMNS.index("latest__net_throughput_gbps")


def _rows(queryset: QuerySet) -> list[tuple]:
    """The queryset's rows as tuples, with PostgreSQL timestamps read at C speed.

    Django reads each ``timestamptz`` through a Python-level loader; at 10,000
    hosts that was most of the snapshot's time (see bench/results.md). psycopg's
    own loader gives the same aware UTC datetimes, since Django sets the
    connection's time zone to UTC. No column here needs another converter.
    """
    if connection.vendor != "postgresql":
        return list(queryset)
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.cursor.adapters.register_loader("timestamptz", TimestamptzLoader)
        cursor.execute(sql, params)
        return cursor.fetchall()


def _link_doc(source: tuple, target: tuple, capacity: float) -> LinkDoc:
    # The real host's counters measure the link; a virtual end reports none.
    reporter = target if not target[_IS_VIRTUAL] or source[_IS_VIRTUAL] else source
    gbps = reporter[_THROUGHPUT] or 0.0
    return {
        "id": f"{source[1]}::{target[1]}",
        "source": source[1],
        "target": target[1],
        "throughputGbps": gbps,
        "utilization": min(1.0, gbps / capacity),
    }
