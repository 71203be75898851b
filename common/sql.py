"""The dialect module: plain SQL for the hot paths that skip the ORM, the same on PostgreSQL and SQLite.

It owns what such a path needs of the database: parameters (``sql_in``,
``placeholders``, ``db_value``), aware datetimes (``db_datetime``, ``aware``),
row inserts (``rows_insert``, ``objects_insert_new``, ``objects_update``), the
fast timestamp fetch (``rows_fetch``) and time arithmetic and ISO text in SQL
(``epoch``, ``iso_text``, ...). Each fast path has a test, on both databases,
that it returns what the ORM query it stands for returns (tests/common/test_sql.py
and the tests named there).

History queries bucket times by whole seconds since the epoch and measure the
seconds between two readings in the database. PostgreSQL stores ``timestamptz``;
Django stores SQLite datetimes as naive UTC text (``YYYY-MM-DD HH:MM:SS[.ffffff]``),
which sorts as time does. Statements using these run with parameters, so a
literal ``%`` is written ``%%``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from django.db import connection
from django.db.models import CharField, Func, Model
from psycopg.types.datetime import TimestamptzLoader


def sql_in(column: str, values: Sequence[object]) -> tuple[str, list[object]]:
    """``column`` is one of ``values``: the SQL condition and its parameters.

    On PostgreSQL one array parameter (``= ANY(%s)``): a statement with 500
    placeholders cost more in psycopg's client-side parsing of the query
    (``_split_query``, not cached above 4 kB) than in the server, and its text
    differs with every count. SQLite has no arrays: one placeholder per value.
    """
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s)", [list(values)]
    return f"{column} IN ({', '.join(['%s'] * len(values))})", list(values)


def placeholders(count: int) -> str:
    """``%s, %s, …``: ``count`` parameters."""
    return ", ".join(["%s"] * count)


# A statement takes at most 32,766 parameters on SQLite (65,535 on PostgreSQL).
MAX_PARAMETERS = 30_000


def rows_insert(head: str, rows: Sequence[tuple], tail: str = "") -> None:
    """Run ``<head> VALUES (…), (…) <tail>`` for the rows, in as few statements as the parameter limit allows.

    Values go through ``db_value`` (SQLite stores datetimes as naive UTC text).
    """
    width = len(rows[0])
    per_statement = MAX_PARAMETERS // width
    with connection.cursor() as cursor:
        for start in range(0, len(rows), per_statement):
            part = rows[start : start + per_statement]
            values = ", ".join([f"({placeholders(width)})"] * len(part))
            cursor.execute(f"{head} VALUES {values} {tail}", [db_value(v) for row in part for v in row])


def objects_insert_new(objs: Sequence[Model]) -> None:
    """Insert unsaved instances of one model, skipping any that a unique constraint says exist already.

    ``bulk_create(ignore_conflicts=True)`` with one array a column on PostgreSQL
    (``INSERT … SELECT * FROM unnest(…) ON CONFLICT DO NOTHING``): 500 new hosts
    were a statement of 6,500 placeholders that took longer to build and parse
    than to run. Field defaults and ``auto_now_add`` are applied as the ORM
    does (``pre_save``); primary keys are not set on the instances.
    """
    if not objs:
        return
    model = type(objs[0])
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(objs, ignore_conflicts=True)
        return
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    columns = [[f.get_db_prep_save(f.pre_save(obj, add=True), connection) for obj in objs] for f in fields]
    casts = ", ".join(f"%s::{f.db_type(connection)}[]" for f in fields)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {model._meta.db_table} ({', '.join(f.column for f in fields)}) "
            f"SELECT * FROM unnest({casts}) ON CONFLICT DO NOTHING",
            columns,
        )


def objects_update(objs: Sequence[Model], fields: Sequence[str]) -> None:
    """Write these fields of saved instances of one model: ``bulk_update`` in one short statement on PostgreSQL.

    ``UPDATE … FROM unnest(…)`` with one array a column; Django's
    ``bulk_update`` writes a ``CASE`` per column over every id, which for 500
    new hosts took most of a first contact's time (bench/analysis.md).
    """
    if not objs:
        return
    model = type(objs[0])
    if connection.vendor != "postgresql":
        model._default_manager.bulk_update(objs, fields)
        return
    pk = model._meta.pk
    columns = [pk, *(model._meta.get_field(name) for name in fields)]
    arrays = [[f.get_db_prep_save(getattr(obj, f.attname), connection) for obj in objs] for f in columns]
    casts = ", ".join(f"%s::{f.rel_db_type(connection) if f is pk else f.db_type(connection)}[]" for f in columns)
    names = ", ".join(f.column for f in columns)
    updates = ", ".join(f"{f.column} = v.{f.column}" for f in columns[1:])
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {model._meta.db_table} AS t SET {updates} FROM unnest({casts}) AS v({names}) "
            f"WHERE t.{pk.column} = v.{pk.column}",
            arrays,
        )


# --------------------------------------------------------------------------- time in SQL


def epoch(column: str) -> str:
    """Seconds since the epoch, with the fraction, as a float."""
    if connection.vendor == "postgresql":
        # date_part computes in floating point; EXTRACT computes an exact numeric
        # (PostgreSQL 14+), and converting that was half of a month's series.
        return f"date_part('epoch', {column})"
    # The whole seconds, then the text after them ('.123456' or ''): strftime('%s')
    # of the full text rounds to milliseconds first, one second too many from .9995 on.
    return f"(CAST(strftime('%%s', substr({column}, 1, 19)) AS REAL) + CAST(substr({column}, 20) AS REAL))"


def epoch_seconds(column: str) -> str:
    """Whole seconds since the epoch (floor), as an integer: exact, so buckets never slip."""
    if connection.vendor == "postgresql":
        # Microseconds are far above a double's resolution at today's epoch (0.24 µs): exact.
        return f"FLOOR(date_part('epoch', {column}))::bigint"
    # Of the text without its fraction: strftime rounds to milliseconds (see ``epoch``).
    return f"CAST(strftime('%%s', substr({column}, 1, 19)) AS INTEGER)"


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


def iso_utc_sql(expression: str) -> str:
    """PostgreSQL's text of the time ``expression``, exactly as ``common.formats.iso_utc`` writes it.

    Milliseconds, truncated, with a ``Z``: the one definition of the format in
    SQL, for ``iso_text`` and the ORM's ``IsoUtc`` (whose template passes
    ``%(expressions)s`` here).
    """
    return f"to_char({expression} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"


class IsoUtc(Func):
    """``iso_utc_sql`` as an ORM expression (PostgreSQL only).

    Python's ``isoformat`` for each of 10,000 hosts was a quarter of a
    snapshot's build (bench/analysis.md); ``to_char`` costs a few milliseconds.
    """

    template = iso_utc_sql("%(expressions)s")
    output_field = CharField()


def iso_text(column: str) -> str:
    """The time as ``common.formats.iso_utc`` writes it, by PostgreSQL (``iso_utc_sql``); else NULL."""
    if connection.vendor == "postgresql":
        return iso_utc_sql(column)
    return "NULL"


def float_type() -> str:
    """The column type of a float computed in SQL."""
    return "double precision" if connection.vendor == "postgresql" else "REAL"


def db_datetime(moment: datetime) -> object:
    """A parameter as the ORM would send it (SQLite: naive UTC text)."""
    return connection.ops.adapt_datetimefield_value(moment)


def db_value(value: object) -> object:
    """Any parameter as the ORM would send it: datetimes through ``db_datetime``, the rest as they are."""
    return db_datetime(value) if isinstance(value, datetime) else value


def aware(value: datetime | str | None) -> datetime | None:
    """A datetime read by plain SQL: aware on PostgreSQL, naive UTC (or text) on SQLite."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def epoch_to_datetime(seconds: float) -> datetime:
    """The aware UTC datetime of seconds since the epoch."""
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
