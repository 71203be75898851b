"""Retention: each kind of history keeps exactly what it says, by dropping whole days or deleting in chunks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from hosts.models import Host
from jobs.services import job_run_now, jobs_ensure
from metrics import retention
from metrics.models import BatchReceipt, Rollup1h, Rollup5m, Sample
from metrics.retention import (
    RECEIPT_MARGIN,
    history_prune,
    partition_create,
    partitions_ensure,
    partitions_list,
    raw_cutoff,
    samples_partitioned,
)
from tests.conftest import ingest_at, sample_dict

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("open_twin")]
postgresql_only = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="partitions are PostgreSQL's")


@pytest.fixture
def now():
    return timezone.now()


def test_raw_samples_are_kept_for_whole_days_and_nothing_older(now, settings):
    settings.TWIN_RAW_RETENTION_DAYS = 14
    cutoff = raw_cutoff(now=now)
    assert cutoff == (now - timedelta(days=14)).replace(hour=0, minute=0, second=0, microsecond=0)
    if samples_partitioned():
        # Days before the cutoff with partitions of their own are dropped whole.
        for days in (1, 3):
            partition_create(day=(cutoff - timedelta(days=days)).date())
    stamps = {
        "three days too old": cutoff - timedelta(days=3) + timedelta(hours=5),
        "a second too old": cutoff - timedelta(seconds=1),
        "the first kept": cutoff,
        "a day in": cutoff + timedelta(days=1, hours=3),
        "a minute ago": now - timedelta(minutes=1),
    }
    ingest_at([sample_dict(at=at, cpu_load=float(i)) for i, at in enumerate(stamps.values())])
    if samples_partitioned():
        # Inside this test's one transaction, the foreign-key checks deferred to its
        # commit would keep the partitions from being dropped: run them now.
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    report = history_prune(now=now)
    kept = set(Sample.objects.values_list("cpu_load", flat=True))
    assert kept == {2.0, 3.0, 4.0}
    if samples_partitioned():
        assert len(report.partitions_dropped) == 2
        assert all(day >= cutoff.date() for day in partitions_list())
    assert "raw sample" in report.sentence()


def test_rollups_and_receipts_are_kept_exactly_their_retention(now, settings):
    settings.TWIN_ROLLUP_RETENTION_DAYS = 90
    settings.TWIN_HOURLY_RETENTION_DAYS = 400
    host = Host.objects.create(hostname="kept-01")
    five = now - timedelta(days=90)
    hour = now - timedelta(days=400)
    for bucket in (five - timedelta(minutes=5), five + timedelta(minutes=5)):
        Rollup5m.objects.create(host=host, bucket=bucket, samples=1, first_at=bucket, last_at=bucket)
    for bucket in (hour - timedelta(hours=1), hour + timedelta(hours=1)):
        Rollup1h.objects.create(host=host, bucket=bucket, samples=1, first_at=bucket, last_at=bucket)
    receipts = now - timedelta(seconds=settings.TWIN_SIGNATURE_WINDOW_SECONDS) - RECEIPT_MARGIN
    for i, received in enumerate((receipts - timedelta(seconds=1), receipts + timedelta(seconds=1))):
        BatchReceipt.objects.create(reporter="", agent_session="s", sequence=i, received_at=received, accepted=1)
    report = history_prune(now=now)
    assert list(Rollup5m.objects.values_list("bucket", flat=True)) == [five + timedelta(minutes=5)]
    assert list(Rollup1h.objects.values_list("bucket", flat=True)) == [hour + timedelta(hours=1)]
    assert list(BatchReceipt.objects.values_list("sequence", flat=True)) == [1]
    assert (report.rollups_5m_deleted, report.rollups_1h_deleted, report.receipts_deleted) == (1, 1, 1)


def test_deletes_go_in_bounded_chunks_until_nothing_is_left(now, monkeypatch):
    monkeypatch.setattr(retention, "DELETE_CHUNK", 2)
    host = Host.objects.create(hostname="chunks-01")
    old = now - timedelta(days=200)
    for i in range(7):
        bucket = old + timedelta(minutes=5 * i)
        Rollup5m.objects.create(host=host, bucket=bucket, samples=1, first_at=bucket, last_at=bucket)
    with CaptureQueriesContext(connection) as queries:
        assert history_prune(now=now).rollups_5m_deleted == 7
    table = Rollup5m._meta.db_table
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith(f"DELETE FROM {table}")]
    assert len(deletes) == 4  # 2 + 2 + 2 + 1
    assert not Rollup5m.objects.exists()


def test_a_late_sample_older_than_every_day_kept_is_caught_and_pruned(now):
    ingest_at([sample_dict(at=now - timedelta(days=60))])
    assert Sample.objects.count() == 1
    history_prune(now=now)
    assert not Sample.objects.exists()


@postgresql_only
def test_partitions_are_created_ahead_and_a_day_caught_by_the_default_partition_moves_in(now):
    later = now + timedelta(days=30)
    # A sample stamped on a day without a partition lands in the default partition...
    ingest_at([sample_dict(at=later, cpu_load=12.5)], received_at=later)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {retention.DEFAULT_PARTITION}")
        assert cursor.fetchone()[0] == 1
    created = partitions_ensure(now=later, ahead_days=2)
    assert [name[-8:] for name in created] == [f"{(later + timedelta(days=d)):%Y%m%d}" for d in range(3)]
    # ...and moves into its day's partition when that is created.
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {retention.DEFAULT_PARTITION}")
        assert cursor.fetchone()[0] == 0
        cursor.execute(f"SELECT cpu_load FROM {created[0]}")
        assert cursor.fetchall() == [(12.5,)]
    assert partitions_ensure(now=later, ahead_days=2) == []


@postgresql_only
def test_the_samples_table_is_partitioned_by_day_with_a_default_partition():
    assert samples_partitioned()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_partkeydef(%s::regclass)", [Sample._meta.db_table])
        assert cursor.fetchone()[0] == 'RANGE ("timestamp")'
    assert timezone.now().date() in partitions_list()


def test_a_retried_sample_is_still_stored_once_in_the_keyed_table(post_batch):
    sample = sample_dict()
    assert post_batch([sample]).json()["accepted"] == 1
    again = post_batch([sample]).json()
    assert (again["accepted"], again["duplicates"]) == (0, 1)
    assert Sample.objects.count() == 1


def test_prune_history_enforces_every_retention_from_the_command_line(now, capsys):
    ingest_at([sample_dict(at=now - timedelta(days=60))])
    call_command("prune_history")
    out = capsys.readouterr().out
    assert "Measurements: " in out and "deleted 1 raw sample(s)" in out and "Status changes: 0 deleted." in out
    assert not Sample.objects.exists()


def test_pruning_runs_on_its_own_as_a_job(now):
    ingest_at([sample_dict(at=now - timedelta(days=60))])
    jobs_ensure(now=now)
    run = job_run_now(name="metrics.prune")
    assert run is not None and run.ok and "deleted 1 raw sample(s)" in run.result
