"""Plain SQL helpers for the hot paths that skip the ORM (PostgreSQL and SQLite alike)."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection
from django.db.models import Model


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
