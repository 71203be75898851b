"""metrics.statements: each raw statement of ingest reads or writes what the ORM query it stands for does.

On PostgreSQL and SQLite alike; where a statement takes another way on
PostgreSQL (COPY from 16 rows, one array a column for several latest rows),
both ways are run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from hosts.models import Host
from metrics.fields import COUNTERS, METRIC_FIELDS, Kind
from metrics.models import BatchReceipt, LatestMetrics, Sample
from metrics.statements import (
    COPY_MIN_ROWS,
    EXACT_LOOKUP_MAX,
    LATEST_COLUMNS,
    SAMPLE_COLUMNS,
    LatestHead,
    LatestRow,
    batch_receipt_insert,
    latest_heads_read,
    latest_seen_touch,
    latest_write,
    samples_insert,
    samples_insert_new,
    samples_stored,
)

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)


def _hosts(*names: str) -> list[Host]:
    Host.objects.bulk_create([Host(hostname=name) for name in names])
    return list(Host.objects.filter(hostname__in=names).order_by("hostname"))


def _metrics(i: int) -> tuple:
    """Metric values in registry order: counters past 32 bits, whole numbers, fractions."""
    return tuple(i * 2**40 if f.kind == Kind.COUNTER else i + 7 if f.integer else i + 0.5 for f in METRIC_FIELDS)


def _sample_rows(host: Host, count: int, *, offset: int = 0) -> list[tuple]:
    return [
        (host.pk, START + timedelta(seconds=offset + i), START + timedelta(hours=1), *_metrics(i)) for i in range(count)
    ]


def _samples_of(host: Host) -> list[tuple]:
    return list(Sample.objects.filter(host=host).order_by("timestamp").values_list(*SAMPLE_COLUMNS[1:]))


def _latest_row(host: Host, i: int, *, previous: bool) -> LatestRow:
    at = START + timedelta(seconds=10 * i)
    counters = [i * 2**33 + n if previous else None for n in range(len(COUNTERS))]
    return LatestRow(
        host.pk,
        at + timedelta(seconds=1),
        at,
        *_metrics(i),
        at - timedelta(seconds=10) if previous else None,
        *counters,
        1.25 if previous else None,
    )


def _latest_of(host_ids: list[int]) -> list[tuple]:
    rows = LatestMetrics.objects.filter(host_id__in=host_ids).order_by("host_id")
    return list(rows.values_list(*LATEST_COLUMNS))


@pytest.mark.parametrize("count", [3, COPY_MIN_ROWS, 40])
def test_samples_insert_stores_what_bulk_create_stores(count):
    """``samples_insert(rows)`` (INSERT; COPY on PostgreSQL from 16 rows) against ``Sample.objects.bulk_create``."""
    fast, orm = _hosts("fast", "orm")
    samples_insert(_sample_rows(fast, count))
    Sample.objects.bulk_create(
        [Sample(**dict(zip(SAMPLE_COLUMNS, (orm.pk, *row[1:]), strict=True))) for row in _sample_rows(orm, count)]
    )
    assert _samples_of(fast) == _samples_of(orm)
    assert len(_samples_of(fast)) == count


@pytest.mark.skipif(connection.vendor != "postgresql", reason="RETURNING of ON CONFLICT DO NOTHING: PostgreSQL's path")
def test_samples_insert_new_stores_and_names_what_bulk_create_ignoring_conflicts_adds():
    """``samples_insert_new(rows)`` against ``bulk_create(ignore_conflicts=True)`` and a query of what was added."""
    fast, orm = _hosts("fast", "orm")
    for host in (fast, orm):
        samples_insert(_sample_rows(host, 2))
    new = samples_insert_new(_sample_rows(fast, 5))
    before = set(Sample.objects.filter(host=orm).values_list("host_id", "timestamp"))
    Sample.objects.bulk_create(
        [Sample(**dict(zip(SAMPLE_COLUMNS, row, strict=True))) for row in _sample_rows(orm, 5)],
        ignore_conflicts=True,
    )
    added = set(Sample.objects.filter(host=orm).values_list("host_id", "timestamp")) - before
    assert _samples_of(fast) == _samples_of(orm)
    assert {t for _, t in new} == {t for _, t in added} and len(new) == 3


@pytest.mark.parametrize("asked", [3, EXACT_LOOKUP_MAX + 6])
def test_samples_stored_finds_what_the_orm_filter_finds(asked):
    """``samples_stored(host_ids, times)`` against ``Sample.objects.filter(host_id__in, timestamp__in)``.

    Past ``EXACT_LOOKUP_MAX`` times the statement reads the range between the
    first and last: what it finds among the asked times is still what the ORM finds.
    """
    one, two, other = _hosts("one", "two", "other")
    samples_insert(_sample_rows(one, asked, offset=0)[::2])
    samples_insert(_sample_rows(two, 4, offset=1))
    samples_insert(_sample_rows(other, asked))
    times = [START + timedelta(seconds=i) for i in range(asked)]
    found = samples_stored(host_ids=[one.pk, two.pk], times=times)
    orm = set(
        Sample.objects.filter(host_id__in=[one.pk, two.pk], timestamp__in=times).values_list("host_id", "timestamp")
    )
    assert {key for key in found if key[1] in times} == orm != set()
    assert all(ts.tzinfo is not None for _, ts in found)


def test_latest_heads_read_reads_what_the_orm_reads():
    """``latest_heads_read(host_ids)`` against ``LatestMetrics.objects.filter(host_id__in).values_list(...)``."""
    hosts = _hosts("a", "b", "c", "none")
    latest_write([_latest_row(h, i, previous=i > 0) for i, h in enumerate(hosts[:3])])
    ids = [h.pk for h in hosts]
    fast = latest_heads_read(host_ids=ids)
    orm = LatestMetrics.objects.filter(host_id__in=ids).order_by("host_id").values_list(*LatestHead._fields)
    assert sorted(tuple(row) for row in fast.values()) == list(orm)
    assert set(fast) == {h.pk for h in hosts[:3]}
    assert all(head.sample_time.tzinfo is not None for head in fast.values())
    assert latest_heads_read(host_ids=[]) == {}


@pytest.mark.parametrize("count", [1, 3])
def test_latest_write_never_moves_the_last_contact_backwards(count):
    """A row written with an earlier ``last_seen`` (a batch received before a concurrent one) keeps the later one."""
    hosts = _hosts(*(f"h-{i}" for i in range(count)))
    latest_write([_latest_row(h, 5, previous=False) for h in hosts])
    older = [_latest_row(h, 6, previous=True)._replace(last_seen=START) for h in hosts]
    latest_write(older)
    for seen, sample_time in LatestMetrics.objects.filter(host__in=hosts).values_list("last_seen", "sample_time"):
        assert (seen, sample_time) == (START + timedelta(seconds=51), START + timedelta(seconds=60))


def test_latest_seen_touch_moves_the_last_contact_forward_only():
    """``latest_seen_touch`` sets ``last_seen`` to the later of the stored one and the given one, nothing else."""
    early, late = _hosts("early", "late")
    latest_write([_latest_row(early, 1, previous=False), _latest_row(late, 9, previous=False)])
    seen = START + timedelta(seconds=50)
    latest_seen_touch(host_ids=[early.pk, late.pk], seen=seen)
    latest_seen_touch(host_ids=[], seen=seen)
    rows = dict(LatestMetrics.objects.values_list("host_id", "last_seen"))
    assert rows == {early.pk: seen, late.pk: START + timedelta(seconds=91)}
    assert LatestMetrics.objects.get(host=early).sample_time == START + timedelta(seconds=10)


@pytest.mark.parametrize("count", [1, 3])
def test_latest_write_stores_what_update_or_create_stores(count):
    """``latest_write(rows)`` (VALUES; one array a column on PostgreSQL for several) against ``update_or_create``."""
    fast, orm = _hosts(*(f"fast-{i}" for i in range(count))), _hosts(*(f"orm-{i}" for i in range(count)))
    for step in (0, 1):  # a first write inserts, a second replaces
        latest_write([_latest_row(h, i + step, previous=step == 1) for i, h in enumerate(fast)])
        for i, host in enumerate(orm):
            row = _latest_row(host, i + step, previous=step == 1)
            LatestMetrics.objects.update_or_create(
                host=host, defaults=dict(zip(LATEST_COLUMNS[1:], row[1:], strict=True))
            )
        strip = [row[1:] for row in _latest_of([h.pk for h in fast])]
        assert strip == [row[1:] for row in _latest_of([h.pk for h in orm])]
        assert len(strip) == count


def test_batch_receipt_insert_records_once_as_get_or_create_does():
    """``batch_receipt_insert`` against ``BatchReceipt.objects.get_or_create`` on (reporter, session, sequence)."""
    key = {"reporter": "titan-01", "agent_session": "s-1", "sequence": 7}
    fast = [batch_receipt_insert(**key, received_at=START, accepted=n) for n in (5, 9)]
    orm_key = {**key, "reporter": "titan-02"}
    orm = [
        BatchReceipt.objects.get_or_create(**orm_key, defaults={"received_at": START, "accepted": n})[1] for n in (5, 9)
    ]
    assert fast == orm == [True, False]
    stored = BatchReceipt.objects.order_by("reporter").values_list(
        "agent_session", "sequence", "received_at", "accepted"
    )
    assert list(stored) == [("s-1", 7, START, 5)] * 2
