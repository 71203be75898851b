"""Reads of measurements that the twin relies on."""

from __future__ import annotations

from datetime import datetime

from django.db import connection
from django.db.models import CharField, Min, QuerySet, Value

from common.formats import iso_utc
from common.sql import IsoUtc, rows_fetch
from hosts.models import Host
from metrics.fields import FIELD_NAMES
from metrics.models import InterfaceCounters, Sample, Series

# One row per host: its inventory, its rack's name and its latest values, in
# this order, then its last contact as text when the database writes it (else
# None). Read as tuples: model instances for 10,000 hosts cost more than the
# rest of the snapshot.
INVENTORY_COLUMNS = (
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
    # An admin's "this switch is down" (the fabric's reachability).
    "failed",
)
LATEST_READ_COLUMNS = ("last_seen", *FIELD_NAMES, "net_throughput_gbps")
HOST_ROW = (*INVENTORY_COLUMNS, *LATEST_READ_COLUMNS, "last_seen_iso")


def host_rows_query() -> QuerySet:
    """The query behind ``host_rows``: every host, ordered by hostname, as ``HOST_ROW`` tuples."""
    hosts = Host.objects.order_by("hostname")
    if connection.vendor == "postgresql":
        hosts = hosts.annotate(last_seen_iso=IsoUtc("latest__last_seen"))
    else:
        hosts = hosts.annotate(last_seen_iso=Value(None, output_field=CharField()))
    return hosts.values_list(*INVENTORY_COLUMNS, *(f"latest__{c}" for c in LATEST_READ_COLUMNS), "last_seen_iso")


def host_rows() -> list[tuple]:
    """Every host with its latest values (``HOST_ROW`` tuples), in one query.

    On PostgreSQL the rows are read with psycopg's own ``timestamptz`` loader:
    Django reads each through a Python-level loader, and at 10,000 hosts that
    was most of the snapshot's time (bench/results.md). It gives the same aware
    UTC datetimes, since Django sets the connection's time zone to UTC, and no
    column here needs another converter.
    """
    query = host_rows_query()
    if connection.vendor != "postgresql":
        return list(query)
    sql, params = query.query.sql_with_params()
    return rows_fetch(sql, list(params))


def host_first_sample_at(*, host_id: int, since: datetime) -> datetime | None:
    """When the host's first raw sample at or after ``since`` was stamped (one index range scan), or None.

    Raw samples are kept at least a day (``TWIN_RAW_RETENTION_DAYS`` >= 1), so
    within the last day this is when the host's history begins.
    """
    return Sample.objects.filter(host_id=host_id, timestamp__gte=since).aggregate(first=Min("timestamp"))["first"]


def interface_throughputs(*, interface_ids: set[int]) -> dict[int, float | None]:
    """Each of these interfaces that reported counters → its throughput in Gbit/s (None across a reset)."""
    if not interface_ids:
        return {}
    counters = InterfaceCounters.objects.filter(interface_id__in=sorted(interface_ids))
    return dict(counters.values_list("interface_id", "throughput_gbps"))


def host_series_list(*, host_id: int, name: str | None = None) -> list[dict[str, object]]:
    """A host's labelled series (``GET /api/hosts/{hostname}/series``), by name then labels; ``name`` filters."""
    found = Series.objects.filter(host_id=host_id)
    if name is not None:
        found = found.filter(name=name)
    rows = found.values_list("id", "name", "labels", "kind", "unit", "created_at")
    listed = [
        {"id": pk, "name": n, "labels": labels, "type": kind, "unit": unit, "createdAt": iso_utc(created)}
        for pk, n, labels, kind, unit, created in rows
    ]
    listed.sort(key=lambda s: (s["name"], sorted(s["labels"].items())))  # type: ignore[union-attr]
    return listed
