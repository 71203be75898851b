"""metrics.history and metrics.rollups: their plain-SQL reads answer what the ORM queries they stand for answer.

Each runs on PostgreSQL and SQLite. The pairs: ``host_rows_at`` at the present
against ``metrics.selectors.host_rows_query`` (the latest values);
``series_read`` of gauges and ``rollups_rebuild``'s 5-minute buckets against
``Sample.objects.filter(...).aggregate(Avg, Min, Max, ...)`` per bucket;
``retention._delete_chunked`` against ``BatchReceipt.objects.filter(...).delete()``.
Counters' rates are checked against worked examples in test_history_series.py
and test_history_rollups.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import Avg, Count, Max, Min
from django.utils import timezone

from common.sql import db_datetime
from hosts.models import Host
from metrics.fields import GAUGES
from metrics.history import host_rows_at, series_read
from metrics.models import BatchReceipt, Rollup5m, Sample
from metrics.retention import _delete_chunked
from metrics.rollups import FIVE_MINUTES, RAW, rollups_rebuild
from metrics.selectors import host_rows_query
from tests.conftest import ingest_at, sample_dict

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("open_twin")]

# A start on a 5-minute boundary, with a fraction of a second that must not move a sample to another bucket.
START = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def _report(hostname: str, *, count: int, every: float, first: datetime, received: datetime, shift: float = 0) -> None:
    ingest_at(
        [
            sample_dict(
                hostname,
                at=first + timedelta(seconds=every * i + 0.9996),
                cpu_load=(7 * i + shift) % 100,
                memory_used_percent=(3 * i + shift) % 100,
                uptime_seconds=1000 + i,
                net_bytes_tx=10**6 * i,
                net_bytes_rx=2 * 10**6 * i,
            )
            for i in range(count)
        ],
        received_at=received,
    )


def _bucket_aggregate(host: Host, lo: datetime, hi: datetime) -> dict:
    """What the ORM says of one host's samples stamped in [lo, hi)."""
    parts = {"samples": Count("timestamp"), "first_at": Min("timestamp"), "last_at": Max("timestamp")}
    for f in GAUGES:
        parts |= {f"{f.name}_avg": Avg(f.name), f"{f.name}_min": Min(f.name), f"{f.name}_max": Max(f.name)}
    return Sample.objects.filter(host=host, timestamp__gte=lo, timestamp__lt=hi).aggregate(**parts)


def test_the_rows_at_the_present_are_the_latest_values_the_orm_reads():
    """``host_rows_at(at=now)`` (samples, plain SQL) against ``list(host_rows_query())`` (the ORM, latest values)."""
    now = timezone.now()
    for i, hostname in enumerate(("titan-01", "titan-02", "titan-03")):
        _report(
            hostname, count=3, every=10, first=now - timedelta(seconds=40), received=now - timedelta(seconds=2), shift=i
        )
    Host.objects.create(hostname="quiet-01", created_at=now - timedelta(days=1))
    at = now + timedelta(seconds=1)
    fast = host_rows_at(at=at, now=at)
    orm = list(host_rows_query())
    assert [row[1] for row in fast] == [row[1] for row in orm]
    for fast_row, orm_row in zip(fast, orm, strict=True):
        assert fast_row[:-2] == orm_row[:-2]
        assert fast_row[-2] == pytest.approx(orm_row[-2])  # the throughput, from the same two samples
        assert fast_row[-1] in (None, orm_row[-1])  # the text of the last contact, where the database writes it


def test_a_gauge_series_is_the_orms_aggregate_per_step():
    """``series_read`` of raw samples against ``Sample.objects.filter(...).aggregate(Avg, Min, Max)`` per step."""
    _report("titan-01", count=40, every=7, first=START, received=START + timedelta(hours=1))
    host = Host.objects.get(hostname="titan-01")
    keys = tuple(f.key for f in GAUGES)
    series = series_read(
        host_id=host.pk, start=START, end=START + timedelta(seconds=280), step=60, keys=keys, now=START, level=RAW
    )
    assert len(series.times) == 5
    for n, lo in enumerate(series.times):
        orm = _bucket_aggregate(host, lo, lo + timedelta(seconds=60))
        for f in GAUGES:
            got = series.values[f.key]
            assert got["avg"][n] == pytest.approx(orm[f"{f.name}_avg"])
            assert (got["min"][n], got["max"][n]) == (orm[f"{f.name}_min"], orm[f"{f.name}_max"])


def test_five_minute_rollups_are_the_orms_aggregate_per_bucket():
    """``rollups_rebuild``'s 5-minute rows against ``Sample.objects.filter(...).aggregate(...)`` per bucket."""
    received = START + timedelta(hours=1)
    _report("titan-01", count=90, every=9, first=START, received=received)
    # Its seventh sample is stamped 299.9996 s into the first bucket: in it, not the next.
    _report("titan-02", count=12, every=31, first=START + timedelta(seconds=113), received=received, shift=5)
    rollups_rebuild(
        received_after=received - timedelta(seconds=1), received_until=received, stamped_from=START - timedelta(days=1)
    )
    rows = Rollup5m.objects.order_by("host__hostname", "bucket")
    assert rows.count() >= 4
    for rollup in rows:
        orm = _bucket_aggregate(rollup.host, rollup.bucket, rollup.bucket + timedelta(seconds=FIVE_MINUTES.seconds))
        assert (rollup.samples, rollup.first_at, rollup.last_at) == (orm["samples"], orm["first_at"], orm["last_at"])
        for f in GAUGES:
            assert getattr(rollup, f"{f.name}_avg") == pytest.approx(orm[f"{f.name}_avg"])
            assert getattr(rollup, f"{f.name}_min") == orm[f"{f.name}_min"]
            assert getattr(rollup, f"{f.name}_max") == orm[f"{f.name}_max"]


def test_a_chunked_delete_removes_what_the_orms_delete_removes(monkeypatch):
    """``retention._delete_chunked`` (ctid or rowid, in chunks) against ``BatchReceipt.objects.filter().delete()``.

    The table is one that is not partitioned, as everywhere retention calls it
    (a ctid names a row only within one partition).
    """
    monkeypatch.setattr("metrics.retention.DELETE_CHUNK", 7)
    for reporter in ("fast-01", "orm-01"):
        BatchReceipt.objects.bulk_create(
            [
                BatchReceipt(
                    reporter=reporter,
                    agent_session="s",
                    sequence=n,
                    received_at=START + timedelta(seconds=10 * n),
                    accepted=n,
                )
                for n in range(30)
            ]
        )
    cutoff = START + timedelta(seconds=175)
    deleted = _delete_chunked(
        table=BatchReceipt._meta.db_table,
        where="reporter = %s AND received_at < %s",
        params=["fast-01", db_datetime(cutoff)],
    )
    orm_deleted, _ = BatchReceipt.objects.filter(reporter="orm-01", received_at__lt=cutoff).delete()
    assert deleted == orm_deleted == 18

    def kept(reporter: str) -> list:
        return list(
            BatchReceipt.objects.filter(reporter=reporter).order_by("sequence").values_list("sequence", "received_at")
        )

    assert kept("fast-01") == kept("orm-01")
