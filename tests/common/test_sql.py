"""common.sql: each plain-SQL helper reads or writes what the ORM query it stands for does (PostgreSQL and SQLite)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.models import CharField, Value

from common.formats import iso_utc
from common.sql import (
    IsoUtc,
    aware,
    db_datetime,
    epoch,
    epoch_seconds,
    epoch_to_datetime,
    floor_integer,
    from_epoch,
    iso_text,
    objects_insert_new,
    objects_update,
    rows_fetch,
    rows_insert,
    sql_in,
)
from hosts.models import Host, Rack
from metrics.fields import FIELD_NAMES
from metrics.models import BatchReceipt, LatestMetrics

pytestmark = pytest.mark.django_db

# Whole seconds, a fraction that a millisecond truncation must not round up, the epoch's first second.
MOMENTS = [
    datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC),
    datetime(2026, 3, 1, 12, 0, 59, 999_999, tzinfo=UTC),
    datetime(2031, 12, 31, 23, 59, 59, 123_456, tzinfo=UTC),
    datetime(1970, 1, 1, 0, 0, 1, 500_000, tzinfo=UTC),
]
# What a host's row holds that the ORM and these helpers both write (not its id or creation time).
METRICS = dict.fromkeys(FIELD_NAMES, 1)
HOST_FIELDS = ("hostname", "display_name", "ip", "agent_version", "platform", "is_virtual", "rack_id", "position_x")


def _hosts(*names: str) -> list[Host]:
    Host.objects.bulk_create([Host(hostname=name) for name in names])
    return list(Host.objects.filter(hostname__in=names).order_by("hostname"))


def _stamped(moments: list[datetime]) -> list[Host]:
    """Hosts whose last contact (latest values) is each of ``moments``."""
    hosts = _hosts(*(f"t-{i}" for i in range(len(moments))))
    LatestMetrics.objects.bulk_create(
        [LatestMetrics(host=h, last_seen=m, sample_time=m, **METRICS) for h, m in zip(hosts, moments, strict=True)]
    )
    return hosts


def test_sql_in_selects_what_the_orms_in_lookup_selects():
    """``sql_in("hostname", names)`` against ``Host.objects.filter(hostname__in=names)``."""
    _hosts("a", "b", "c", "d")
    for names in (["a"], ["b", "d", "x"], ["x"]):
        condition, params = sql_in("hostname", names)
        fast = {row[0] for row in rows_fetch(f"SELECT hostname FROM {Host._meta.db_table} WHERE {condition}", params)}
        assert fast == set(Host.objects.filter(hostname__in=names).values_list("hostname", flat=True))


def test_objects_insert_new_stores_what_bulk_create_ignoring_conflicts_stores():
    """``objects_insert_new(hosts)`` against ``Host.objects.bulk_create(hosts, ignore_conflicts=True)``."""
    rack = Rack.objects.create(name="R1")
    Host.objects.create(hostname="fast-old", platform="kept")
    Host.objects.create(hostname="orm-old", platform="kept")

    def new(prefix: str) -> list[Host]:
        return [
            Host(hostname=f"{prefix}-old", platform="ignored"),
            Host(hostname=f"{prefix}-1", ip="10.0.0.1", rack=rack, position_x=1.5, agent_version="1.0"),
            Host(hostname=f"{prefix}-2", is_virtual=True, display_name="Core"),
        ]

    objects_insert_new(new("fast"))
    Host.objects.bulk_create(new("orm"), ignore_conflicts=True)

    def stored(prefix: str) -> list[tuple]:
        rows = Host.objects.filter(hostname__startswith=f"{prefix}-").order_by("hostname").values_list(*HOST_FIELDS)
        return [(name.split("-", 1)[1], *rest) for name, *rest in rows]

    assert stored("fast") == stored("orm")
    assert Host.objects.get(hostname="fast-1").created_at is not None


def test_objects_update_writes_what_bulk_update_writes():
    """``objects_update(hosts, fields)`` against ``Host.objects.bulk_update(hosts, fields)``."""
    rack = Rack.objects.create(name="R1")
    fast, orm = _hosts("fast-1", "fast-2"), _hosts("orm-1", "orm-2")
    for group in (fast, orm):
        group[0].platform, group[0].rack, group[0].position_x = "Linux", rack, 2.5
        group[1].ip, group[1].is_virtual = "10.0.0.9", True
    fields = ["platform", "rack", "position_x", "ip", "is_virtual"]
    objects_update(fast, fields)
    Host.objects.bulk_update(orm, fields)

    def stored(prefix: str) -> list[tuple]:
        rows = Host.objects.filter(hostname__startswith=prefix).order_by("hostname").values_list(*HOST_FIELDS[1:])
        return list(rows)

    assert stored("fast-") == stored("orm-")


def test_rows_fetch_reads_the_datetimes_the_orm_reads():
    """``rows_fetch`` of a query's SQL against the queryset itself (aware UTC datetimes; ``aware`` on SQLite)."""
    _stamped(MOMENTS)
    query = LatestMetrics.objects.order_by("host__hostname").values_list("host__hostname", "last_seen")
    sql, params = query.query.sql_with_params()
    fast = [(name, aware(seen)) for name, seen in rows_fetch(sql, list(params))]
    assert fast == list(query)
    if connection.vendor == "postgresql":
        # The C loader gives what Django's own does, untouched.
        assert rows_fetch(sql, list(params)) == list(query)


def test_rows_insert_stores_what_the_orm_creates_across_statements(monkeypatch):
    """``rows_insert`` split by the parameter limit against ``BatchReceipt.objects.bulk_create``."""
    monkeypatch.setattr("common.sql.MAX_PARAMETERS", 10)  # two rows of five a statement
    rows = [("fast", f"s{i}", i, MOMENTS[i % 4], i * 3) for i in range(7)]
    rows_insert(
        f"INSERT INTO {BatchReceipt._meta.db_table} (reporter, agent_session, sequence, received_at, accepted)", rows
    )
    BatchReceipt.objects.bulk_create(
        [
            BatchReceipt(reporter="orm", agent_session=s, sequence=n, received_at=at, accepted=a)
            for _, s, n, at, a in rows
        ]
    )

    def stored(reporter: str) -> list[tuple]:
        receipts = BatchReceipt.objects.filter(reporter=reporter).order_by("sequence")
        return list(receipts.values_list("agent_session", "sequence", "received_at", "accepted"))

    assert stored("fast") == stored("orm") != []


def test_iso_text_and_iso_utc_write_a_time_as_the_api_does():
    """``iso_text`` (plain SQL) and ``IsoUtc`` (the ORM's) against ``common.formats.iso_utc`` (PostgreSQL writes it)."""
    _stamped(MOMENTS)
    rows = LatestMetrics.objects.order_by("last_seen")
    if connection.vendor == "postgresql":
        orm = list(rows.annotate(text=IsoUtc("last_seen")).values_list("last_seen", "text"))
    else:
        orm = list(rows.annotate(text=Value(None, output_field=CharField())).values_list("last_seen", "text"))
    table = LatestMetrics._meta.db_table
    fast = [
        (aware(seen), text)
        for seen, text in rows_fetch(f"SELECT last_seen, {iso_text('last_seen')} FROM {table} ORDER BY last_seen")
    ]
    assert fast == orm
    for seen, text in fast:
        assert text == (iso_utc(seen) if connection.vendor == "postgresql" else None)


def test_epoch_arithmetic_in_sql_is_pythons():
    """``epoch``, ``epoch_seconds``, ``floor_integer``, ``from_epoch`` against the same arithmetic in Python."""
    _stamped(MOMENTS)
    table = LatestMetrics._meta.db_table
    rows = rows_fetch(
        f"SELECT last_seen, {epoch('last_seen')}, {epoch_seconds('last_seen')}, "
        f"{floor_integer(epoch('last_seen') + ' / 60')}, {from_epoch(epoch_seconds('last_seen'))} FROM {table}"
    )
    assert len(rows) == len(MOMENTS)
    for seen, seconds, whole, minutes, floored in rows:
        moment = aware(seen)
        assert seconds == pytest.approx(moment.timestamp(), abs=1e-6)
        assert whole == int(moment.timestamp() // 1)
        assert minutes == int(moment.timestamp() // 60)
        assert aware(floored) == epoch_to_datetime(whole)


def test_db_datetime_is_the_parameter_the_orm_sends():
    """A filter with ``db_datetime(moment)`` against ``filter(last_seen=moment)``."""
    _stamped(MOMENTS)
    table = LatestMetrics._meta.db_table
    for moment in MOMENTS:
        fast = rows_fetch(f"SELECT count(*) FROM {table} WHERE last_seen = %s", [db_datetime(moment)])[0][0]
        assert fast == LatestMetrics.objects.filter(last_seen=moment).count() == 1
