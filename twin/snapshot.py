"""The twin-state document: what ``GET /api/twin/state`` returns and Socket.IO pushes.

Built from two queries whatever the size of the fleet (hosts with their rack
and latest values; links), never from the history. Status and throughput are
derived here from stored facts and the clock.
"""

from __future__ import annotations

from datetime import datetime
from typing import NotRequired, TypedDict

from django.conf import settings
from django.utils import timezone

from hosts.models import Host, Link
from metrics.models import LatestMetrics
from twin.formats import iso_utc
from twin.status import HostStatus, host_status, link_throughput_gbps, virtual_status


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


def snapshot_build(*, now: datetime | None = None) -> TwinState:
    """Build the whole twin-state document as of ``now``.

    1. Read every host with its rack and latest values (one query).
    2. Read every link (one query) and derive throughput from the counters of
       the end that reports them.
    3. Derive each real host's status from its last sample, then each virtual
       node's from its neighbours.
    """
    now = now or timezone.now()
    hosts = list(Host.objects.select_related("rack", "latest").order_by("hostname"))
    links = list(Link.objects.order_by("source_id", "target_id").values_list("source_id", "target_id", "capacity_gbps"))
    by_id = {h.pk: h for h in hosts}
    latest = {h.pk: _latest_of(h) for h in hosts}
    status: dict[int, HostStatus] = {
        h.pk: host_status(last_seen=latest[h.pk].last_seen if latest[h.pk] else None, now=now)
        for h in hosts
        if not h.is_virtual
    }
    neighbours: dict[int, list[int]] = {}
    for source_id, target_id, _ in links:
        neighbours.setdefault(source_id, []).append(target_id)
        neighbours.setdefault(target_id, []).append(source_id)
    for h in hosts:
        if h.is_virtual:
            own = host_status(last_seen=latest[h.pk].last_seen, now=now) if latest[h.pk] else None
            status[h.pk] = virtual_status(
                own=own, neighbours=[status[n] for n in neighbours.get(h.pk, []) if n in status]
            )
    link_docs: list[LinkDoc] = []
    for source_id, target_id, capacity in links:
        source, target = by_id[source_id], by_id[target_id]
        # The real host's counters measure the link; a virtual end reports none.
        reporter = target if not target.is_virtual or source.is_virtual else source
        gbps = link_throughput_gbps(latest[reporter.pk]) or 0.0
        link_docs.append(
            {
                "id": f"{source.hostname}::{target.hostname}",
                "source": source.hostname,
                "target": target.hostname,
                "throughputGbps": round(gbps, 6),
                "utilization": round(min(1.0, gbps / capacity), 6),
            }
        )
    return {
        "type": "twin-state",
        "twinId": settings.TWIN_ID,
        "generatedAt": iso_utc(now),
        "hosts": [_host_doc(h, latest[h.pk], status[h.pk], neighbours, latest, now) for h in hosts],
        "links": link_docs,
    }


def _latest_of(host: Host) -> LatestMetrics | None:
    try:
        return host.latest
    except LatestMetrics.DoesNotExist:
        return None


def _host_doc(
    host: Host,
    latest: LatestMetrics | None,
    status: HostStatus,
    neighbours: dict[int, list[int]],
    all_latest: dict[int, LatestMetrics | None],
    now: datetime,
) -> HostDoc:
    if latest is not None:
        metrics: HostMetrics = {
            "cpuLoad": latest.cpu_load,
            "memoryUsedPercent": latest.memory_used_percent,
            "loadAverage": latest.load_average,
            "uptimeSeconds": latest.uptime_seconds,
        }
        if latest.net_bytes_tx is not None:
            metrics["netBytesTx"] = latest.net_bytes_tx
        if latest.net_bytes_rx is not None:
            metrics["netBytesRx"] = latest.net_bytes_rx
        last_seen: datetime | None = latest.last_seen
    else:
        metrics = {"cpuLoad": None, "memoryUsedPercent": None, "loadAverage": None, "uptimeSeconds": None}
        last_seen = None
    if host.is_virtual and last_seen is None:
        # A switch without a poller was last seen when its freshest neighbour was.
        seen = [m.last_seen for n in neighbours.get(host.pk, []) if (m := all_latest.get(n)) is not None]
        last_seen = max(seen, default=None)
    # Keys in the seed's order; "rack" only for a host that has one.
    doc: HostDoc = {
        "hostname": host.hostname,
        "displayName": host.label,
        "ip": host.ip,
        "status": status,
        "lastSeen": iso_utc(last_seen) if last_seen else None,
        "agentVersion": host.agent_version,
        "platform": host.platform,
    }  # type: ignore[typeddict-item]
    if host.rack is not None:
        doc["rack"] = host.rack.name
    doc["metrics"] = metrics
    doc["position"] = {"x": host.position_x or 0.0, "y": host.position_y or 0.0, "z": host.position_z or 0.0}
    return doc
