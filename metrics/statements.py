"""The raw statements of ingest: history rows, the latest values and batch receipts, in plain SQL.

The rules (who may write what, what is new, never moving the latest values
backwards) are ``metrics.services``; this module only reads and writes rows.
Plain SQL on Django's connection: on this path, building each ORM query cost
more than running it (profile in bench/analysis.md). Each statement has a test,
on PostgreSQL and SQLite, that it does what the ORM query it stands for does
(tests/metrics/test_statements.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import cache
from typing import Any, NamedTuple

from django.db import connection

from common.sql import aware, db_datetime, placeholders, rows_insert, sql_in
from metrics.fields import COUNTERS, FIELD_NAMES, METRIC_FIELDS
from metrics.models import BatchReceipt, LatestMetrics, Sample

# A history row's columns, in the order of the tuples written here.
SAMPLE_COLUMNS = ("host_id", "timestamp", "received_at", *FIELD_NAMES)
# Fewer rows than this go in one INSERT: COPY's extra round trip costs more
# than it saves on a handful of rows.
COPY_MIN_ROWS = 16
# Up to this many timestamps, ask for them exactly: a small batch spanning a
# long time (a spooled sample from last week beside today's) must not scan all
# the history in between.
EXACT_LOOKUP_MAX = 64


# A host's row of latest values; its fields are the table's columns, in this order.
LatestRow = NamedTuple(  # type: ignore[misc]  # the metric columns come from the registry
    "LatestRow",
    [
        ("host_id", int),
        ("last_seen", datetime),
        ("sample_time", datetime),
        *((f.name, Any) for f in METRIC_FIELDS),
        ("prev_sample_time", datetime | None),
        *((f"prev_{f.name}", int | None) for f in COUNTERS),
        ("net_throughput_gbps", float | None),
    ],
)
# What ingest reads of a host's stored latest values: its newest sample's time and
# counters (the next rates start from them). The last contact is kept by
# ``latest_write`` itself, and a late batch only touches it (``latest_seen_touch``).
LatestHead = NamedTuple(  # type: ignore[misc]  # the counter columns come from the registry
    "LatestHead", [("host_id", int), ("sample_time", datetime), *((f.name, int | None) for f in COUNTERS)]
)
# Every column of the latest values' table (``metrics.selectors.LATEST_READ_COLUMNS`` is what the twin reads of it).
LATEST_COLUMNS: tuple[str, ...] = LatestRow._fields


def batch_receipt_insert(
    *, reporter: str, agent_session: str, sequence: int, received_at: datetime, accepted: int
) -> bool:
    """Record a batch's (reporter, session, sequence); False if that receipt exists already.

    One ``INSERT ... ON CONFLICT DO NOTHING`` (PostgreSQL and SQLite alike): a
    concurrent retry blocks on the unique index until the first try commits,
    then finds the row taken.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {BatchReceipt._meta.db_table} (reporter, agent_session, sequence, received_at, accepted) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (reporter, agent_session, sequence) DO NOTHING RETURNING id",
            [reporter, agent_session, sequence, db_datetime(received_at), accepted],
        )
        return cursor.fetchone() is not None


def samples_stored(*, host_ids: Iterable[int], times: Iterable[datetime]) -> set[tuple[int, datetime]]:
    """(host id, timestamp) of the history rows of these hosts at these timestamps (aware datetimes)."""
    host_filter, host_params = sql_in("host_id", list(host_ids))
    times = sorted(set(times))
    if len(times) <= EXACT_LOOKUP_MAX:
        time_filter, time_params = sql_in("timestamp", [db_datetime(t) for t in times])
    else:
        # A time range rather than a list of hundreds of timestamps: one scan
        # of the (host, timestamp) index, several times cheaper (bench/analysis.md).
        # Rows between the given times come back too; the caller looks up its own.
        time_filter, time_params = "timestamp BETWEEN %s AND %s", [db_datetime(times[0]), db_datetime(times[-1])]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT host_id, timestamp FROM {Sample._meta.db_table} WHERE {host_filter} AND {time_filter}",
            [*host_params, *time_params],
        )
        return {(host_id, aware(ts)) for host_id, ts in cursor.fetchall()}  # type: ignore[misc]


def samples_insert(rows: list[tuple]) -> None:
    """Insert history rows (tuples in ``SAMPLE_COLUMNS`` order).

    On PostgreSQL many rows go through ``COPY``, several times faster than an
    INSERT of model instances (see bench/results.md). Neither skips conflicts:
    the caller makes sure the rows are new.
    """
    if not rows:
        return
    columns = ", ".join(SAMPLE_COLUMNS)
    table = Sample._meta.db_table
    if connection.vendor == "postgresql" and len(rows) >= COPY_MIN_ROWS:
        with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    rows_insert(f"INSERT INTO {table} ({columns})", rows)


def samples_insert_new(rows: list[tuple]) -> set[tuple[int, datetime]]:
    """Insert a few history rows, skipping those stored already; return (host id, timestamp) of the new.

    PostgreSQL only (``RETURNING`` of what ``ON CONFLICT DO NOTHING`` kept).
    """
    values = ", ".join([f"({placeholders(len(SAMPLE_COLUMNS))})"] * len(rows))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Sample._meta.db_table} ({', '.join(SAMPLE_COLUMNS)}) VALUES {values} "
            "ON CONFLICT (host_id, timestamp) DO NOTHING RETURNING host_id, timestamp",
            [v for row in rows for v in row],
        )
        return set(cursor.fetchall())


def latest_heads_read(*, host_ids: list[int]) -> dict[int, LatestHead]:
    """These hosts' newest stored sample time and counters (those that have latest values), by host id.

    Five of the row's sixteen columns, one timestamp instead of three: loading
    500 hosts' whole rows was about a sixth of a 500-host batch in a profile
    (bench/results.md, 2026-12-08).
    """
    if not host_ids:
        return {}
    condition, params = sql_in("host_id", host_ids)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(LatestHead._fields)} FROM {LatestMetrics._meta.db_table} WHERE {condition}", params
        )
        rows = cursor.fetchall()
    if connection.vendor == "postgresql":
        return {row[0]: LatestHead(*row) for row in rows}  # aware datetimes already
    return {row[0]: LatestHead(row[0], aware(row[1]), *row[2:]) for row in rows}


def latest_seen_touch(*, host_ids: list[int], seen: datetime) -> None:
    """Move these hosts' last contact forward to ``seen``, never backwards (a batch only of late samples)."""
    if not host_ids:
        return
    condition, params = sql_in("host_id", host_ids)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {LatestMetrics._meta.db_table} SET last_seen = {_greatest()}(last_seen, %s) WHERE {condition}",
            [db_datetime(seen), *params],
        )


def _greatest() -> str:
    return "GREATEST" if connection.vendor == "postgresql" else "MAX"


def latest_write(rows: list[LatestRow]) -> None:
    """Insert or replace the hosts' latest values, one statement per parameter limit (PostgreSQL and SQLite alike).

    The last contact never moves backwards: a concurrent batch received later
    may have committed first.
    """
    if not rows:
        return
    table = LatestMetrics._meta.db_table
    head = f"INSERT INTO {table} ({', '.join(LATEST_COLUMNS)})"
    updates = [f"{c} = EXCLUDED.{c}" for c in LATEST_COLUMNS[2:]]
    tail = (
        f"ON CONFLICT (host_id) DO UPDATE SET last_seen = {_greatest()}({table}.last_seen, EXCLUDED.last_seen), "
        f"{', '.join(updates)}"
    )
    if connection.vendor == "postgresql" and len(rows) > 1:
        # One array a column: a short statement psycopg parses once (see common.sql.sql_in).
        with connection.cursor() as cursor:
            cursor.execute(
                f"{head} SELECT * FROM unnest({_latest_array_casts()}) {tail}",
                [list(c) for c in zip(*rows, strict=True)],
            )
        return
    rows_insert(head, rows, tail)


@cache
def _latest_array_casts() -> str:
    """``%s::<type>[]`` for each column of the latest values, in ``LATEST_COLUMNS`` order."""
    fields = {f.column: f for f in LatestMetrics._meta.concrete_fields}
    return ", ".join(f"%s::{fields[c].db_type(connection)}[]" for c in LATEST_COLUMNS)
