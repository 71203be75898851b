"""Time arithmetic in SQL, the same on PostgreSQL and SQLite.

History queries bucket times by whole seconds since the epoch and measure the
seconds between two readings in the database. PostgreSQL stores ``timestamptz``;
Django stores SQLite datetimes as naive UTC text (``YYYY-MM-DD HH:MM:SS[.ffffff]``),
which sorts as time does. Statements using these run with parameters, so a
literal ``%`` is written ``%%``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import connection
from psycopg.types.datetime import TimestamptzLoader


def epoch(column: str) -> str:
    """Seconds since the epoch, with the fraction, as a float."""
    if connection.vendor == "postgresql":
        # date_part computes in floating point; EXTRACT computes an exact numeric
        # (PostgreSQL 14+), and converting that was half of a month's series.
        return f"date_part('epoch', {column})"
    # strftime('%s') drops the fraction; the text after the seconds is it ('.123456' or '').
    return f"(CAST(strftime('%%s', {column}) AS REAL) + CAST(substr({column}, 20) AS REAL))"


def epoch_seconds(column: str) -> str:
    """Whole seconds since the epoch (floor), as an integer: exact, so buckets never slip."""
    if connection.vendor == "postgresql":
        # Microseconds are far above a double's resolution at today's epoch (0.24 µs): exact.
        return f"FLOOR(date_part('epoch', {column}))::bigint"
    return f"CAST(strftime('%%s', {column}) AS INTEGER)"


def floor_integer(expression: str) -> str:
    """A non-negative float expression rounded down to an integer."""
    if connection.vendor == "postgresql":
        return f"FLOOR({expression})::bigint"
    return f"CAST({expression} AS INTEGER)"


def from_epoch(expression: str) -> str:
    """The datetime ``expression`` (whole seconds since the epoch) stands for, as the column stores it."""
    if connection.vendor == "postgresql":
        return f"to_timestamp({expression})"
    return f"datetime({expression}, 'unixepoch')"


def iso_text(column: str) -> str:
    """The time as ``common.formats.iso_utc`` writes it, by PostgreSQL (``metrics.selectors.IsoUtc``); else NULL."""
    if connection.vendor == "postgresql":
        return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
    return "NULL"


def float_type() -> str:
    return "double precision" if connection.vendor == "postgresql" else "REAL"


def db_datetime(moment: datetime) -> object:
    """A parameter as the ORM would send it (SQLite: naive UTC text)."""
    return connection.ops.adapt_datetimefield_value(moment)


def aware(value: datetime | str | None) -> datetime | None:
    """A datetime read by plain SQL: aware on PostgreSQL, naive UTC (or text) on SQLite."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def epoch_to_datetime(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def rows_fetch(sql: str, params: list | None = None) -> list[tuple]:
    """Rows of plain SQL; on PostgreSQL timestamps are read by psycopg's C loader.

    Django reads each ``timestamptz`` through a Python-level loader, most of a
    10,000-row read's time (``metrics.selectors.host_rows`` explains); this one
    gives the same aware UTC datetimes, as Django sets the connection to UTC.
    """
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.cursor.adapters.register_loader("timestamptz", TimestamptzLoader)
        cursor.execute(sql, params or [])
        return cursor.fetchall()
