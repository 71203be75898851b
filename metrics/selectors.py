"""Reads of measurements that the twin relies on."""

from __future__ import annotations

from django.db import connection
from django.db.models import CharField, Func, QuerySet, Value
from psycopg.types.datetime import TimestamptzLoader

from hosts.models import Host
from metrics.fields import FIELD_NAMES
from metrics.models import InterfaceCounters

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
LATEST_COLUMNS = ("last_seen", *FIELD_NAMES, "net_throughput_gbps")
HOST_ROW = (*INVENTORY_COLUMNS, *LATEST_COLUMNS, "last_seen_iso")


class IsoUtc(Func):
    """A timestamp written by PostgreSQL exactly as ``iso_utc`` writes it (milliseconds, truncated).

    Python's ``isoformat`` for each of 10,000 hosts was a quarter of a
    snapshot's build (bench/analysis.md); ``to_char`` costs a few milliseconds.
    """

    template = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
    output_field = CharField()


def host_rows_query() -> QuerySet:
    """The query behind ``host_rows``: every host, ordered by hostname, as ``HOST_ROW`` tuples."""
    hosts = Host.objects.order_by("hostname")
    if connection.vendor == "postgresql":
        hosts = hosts.annotate(last_seen_iso=IsoUtc("latest__last_seen"))
    else:
        hosts = hosts.annotate(last_seen_iso=Value(None, output_field=CharField()))
    return hosts.values_list(*INVENTORY_COLUMNS, *(f"latest__{c}" for c in LATEST_COLUMNS), "last_seen_iso")


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
    with connection.cursor() as cursor:
        cursor.cursor.adapters.register_loader("timestamptz", TimestamptzLoader)
        cursor.execute(sql, params)
        return cursor.fetchall()


def interface_throughputs(*, interface_ids: set[int]) -> dict[int, float | None]:
    """Each of these interfaces that reported counters → its throughput in Gbit/s (None across a reset)."""
    if not interface_ids:
        return {}
    counters = InterfaceCounters.objects.filter(interface_id__in=sorted(interface_ids))
    return dict(counters.values_list("interface_id", "throughput_gbps"))
