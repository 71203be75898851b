"""How long measurements are kept, and the daily partitions of raw samples on PostgreSQL.

- raw samples: ``TWIN_RAW_RETENTION_DAYS`` whole UTC days. On PostgreSQL a
  day's partition is dropped whole once all of it is older; on SQLite rows are
  deleted in bounded chunks.
- 5-minute rollups: ``TWIN_ROLLUP_RETENTION_DAYS``; hourly rollups:
  ``TWIN_HOURLY_RETENTION_DAYS``; deleted in bounded chunks.
- labelled series' values and rollups: exactly as the samples' and theirs
  (``HISTORY_TABLES``: both raw histories go through the same partition and
  prune code).
- batch receipts: ``TWIN_SIGNATURE_WINDOW_SECONDS`` + ``RECEIPT_MARGIN``;
  deleted in bounded chunks.

Raw samples go by whole days on both databases, so both keep exactly the
same: every sample stamped on or after the start of the UTC day
``TWIN_RAW_RETENTION_DAYS`` before today. A receipt only has to outlive the
time a signed request can be replayed (its timestamp's window); samples a late
retry carries are still refused as already stored by the (host, timestamp) key.

On PostgreSQL ``metrics_sample`` is partitioned by range of ``timestamp``,
one partition a UTC day, plus a default partition that catches what no day
holds (a sample stamped before the oldest day, or beyond the days created
ahead), so ingest never fails for want of a partition. ``partitions_ensure``
creates the days ahead; a day whose rows went to the default partition
meanwhile is created with them moved in.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db import OperationalError, connection, transaction

from common.sql import db_datetime
from hosts.models import Host
from metrics.models import (
    BatchReceipt,
    Rollup1h,
    Rollup5m,
    Sample,
    Series,
    SeriesRollup1h,
    SeriesRollup5m,
    SeriesSample,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HistoryTable:
    """A raw history kept by day: the host's registry fields (``Sample``) or its labelled series (``SeriesSample``).

    Both are keyed by (``key_column``, ``timestamp``), partitioned alike on
    PostgreSQL and pruned by the same code: one history path, two tables.
    ``owners`` lists the keys' values for SQLite's chunked deletes (each an
    index range).
    """

    table: str
    key_column: str
    owners: str

    @property
    def default_partition(self) -> str:
        return f"{self.table}_default"

    @property
    def partition_prefix(self) -> str:
        return f"{self.table}_p"


SAMPLES = HistoryTable(
    table=Sample._meta.db_table, key_column="host_id", owners=f"SELECT id FROM {Host._meta.db_table} ORDER BY id"
)
SERIES_SAMPLES = HistoryTable(
    table=SeriesSample._meta.db_table,
    key_column="series_id",
    owners=f"SELECT id FROM {Series._meta.db_table} ORDER BY id",
)
HISTORY_TABLES = (SAMPLES, SERIES_SAMPLES)
SAMPLE_TABLE = SAMPLES.table
DEFAULT_PARTITION = SAMPLES.default_partition
PARTITION_PREFIX = SAMPLES.partition_prefix
# Days of partitions kept ready beyond today: ingest accepts samples at most
# TWIN_MAX_FUTURE_SKEW_SECONDS ahead, and the job may be down for a while.
PARTITIONS_AHEAD_DAYS = 3
# Rows per DELETE: each chunk is a short transaction of its own, so ingest
# never waits long behind pruning.
DELETE_CHUNK = 5_000
# A receipt outlives the signature window by this much (clock differences,
# slow requests): a replay inside the window still finds it.
RECEIPT_MARGIN = timedelta(hours=1)
# Dropping a partition takes an exclusive lock on the table for an instant;
# waiting longer than this for it (behind a long query) would stall ingest
# queued behind the drop, so it gives up and the next run tries again.
DROP_LOCK_TIMEOUT = "2s"


def day_start(moment: datetime) -> datetime:
    """The start of ``moment``'s UTC day."""
    return datetime.combine(moment.astimezone(UTC).date(), time(), tzinfo=UTC)


def raw_cutoff(*, now: datetime) -> datetime:
    """Raw samples stamped before this are gone (or about to be): whole UTC days."""
    return day_start(now) - timedelta(days=settings.TWIN_RAW_RETENTION_DAYS)


def rollup_cutoff(*, now: datetime, hourly: bool) -> datetime:
    days = settings.TWIN_HOURLY_RETENTION_DAYS if hourly else settings.TWIN_ROLLUP_RETENTION_DAYS
    return now - timedelta(days=days)


def receipts_cutoff(*, now: datetime) -> datetime:
    return now - timedelta(seconds=settings.TWIN_SIGNATURE_WINDOW_SECONDS) - RECEIPT_MARGIN


# --------------------------------------------------------------------------- partitions


def samples_partitioned(history: HistoryTable = SAMPLES) -> bool:
    """True when this raw history lives in daily partitions (PostgreSQL)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_partitioned_table WHERE partrelid = %s::regclass", [history.table])
        return cursor.fetchone() is not None


def partition_name(day: date, history: HistoryTable = SAMPLES) -> str:
    return f"{history.partition_prefix}{day:%Y%m%d}"


def partitions_list(history: HistoryTable = SAMPLES) -> dict[date, str]:
    """The daily partitions of this raw history, by day (the default partition aside)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [history.table],
        )
        names = [row[0] for row in cursor.fetchall()]
    days = {}
    prefix = history.partition_prefix
    for name in names:
        if name.startswith(prefix):
            days[datetime.strptime(name[len(prefix) :], "%Y%m%d").date()] = name
    return days


def _bound(day: date) -> str:
    return f"'{day.isoformat()} 00:00:00+00'"


def partition_create(*, day: date, history: HistoryTable = SAMPLES) -> str:
    """Create the partition of ``day``, moving in its rows from the default partition, in one transaction.

    Creating a partition checks that the default partition holds none of its
    rows; if the default caught some meanwhile, they move into a new table,
    which is then attached.
    """
    name = partition_name(day, history)
    table, default = history.table, history.default_partition
    bounds = f"FROM ({_bound(day)}) TO ({_bound(day + timedelta(days=1))})"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {default} WHERE timestamp >= {_bound(day)} "
            f"AND timestamp < {_bound(day + timedelta(days=1))} LIMIT 1"
        )
        if cursor.fetchone() is None:
            cursor.execute(f"CREATE TABLE {name} PARTITION OF {table} FOR VALUES {bounds}")
            return name
        cursor.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        cursor.execute(
            f"WITH moved AS (DELETE FROM {default} WHERE timestamp >= {_bound(day)} "
            f"AND timestamp < {_bound(day + timedelta(days=1))} RETURNING *) INSERT INTO {name} SELECT * FROM moved"
        )
        cursor.execute(f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES {bounds}")
    return name


def partitions_ensure(
    *, now: datetime, ahead_days: int = PARTITIONS_AHEAD_DAYS, history: HistoryTable = SAMPLES
) -> list[str]:
    """Create this history's missing daily partitions from today to ``ahead_days`` ahead; return their names."""
    if not samples_partitioned(history):
        return []
    existing = partitions_list(history)
    today = now.astimezone(UTC).date()
    created = []
    for offset in range(ahead_days + 1):
        day = today + timedelta(days=offset)
        if day not in existing:
            created.append(partition_create(day=day, history=history))
    return created


def history_partitions_ensure(*, now: datetime, ahead_days: int = PARTITIONS_AHEAD_DAYS) -> list[str]:
    """``partitions_ensure`` for every raw history (``HISTORY_TABLES``)."""
    return [
        name
        for history in HISTORY_TABLES
        for name in partitions_ensure(now=now, ahead_days=ahead_days, history=history)
    ]


# --------------------------------------------------------------------------- pruning


@dataclass
class PruneReport:
    """What a pruning removed."""

    partitions_dropped: list[str] = field(default_factory=list)
    partition_rows: int = 0  # PostgreSQL's estimate of the dropped partitions' rows
    samples_deleted: int = 0
    series_samples_deleted: int = 0
    rollups_5m_deleted: int = 0
    rollups_1h_deleted: int = 0
    series_rollups_deleted: int = 0  # of labelled series, both levels
    receipts_deleted: int = 0
    skipped: list[str] = field(default_factory=list)

    def sentence(self) -> str:
        parts = []
        if self.partitions_dropped:
            parts.append(
                f"dropped {len(self.partitions_dropped)} day(s) of raw samples (~{self.partition_rows:,} rows)"
            )
        parts.append(f"deleted {self.samples_deleted:,} raw sample(s)")
        parts.append(f"{self.series_samples_deleted:,} raw labelled value(s)")
        parts.append(f"{self.rollups_5m_deleted:,} 5-minute and {self.rollups_1h_deleted:,} hourly rollup(s)")
        parts.append(f"{self.series_rollups_deleted:,} rollup(s) of labelled series")
        parts.append(f"{self.receipts_deleted:,} batch receipt(s)")
        text = ", ".join(parts)
        if self.skipped:
            text += f"; will retry {', '.join(self.skipped)} (busy)"
        return text


def _delete_chunked(*, table: str, where: str, params: list) -> int:
    """Delete the rows matching ``where`` in chunks of ``DELETE_CHUNK``, each in a transaction of its own."""
    chunk = DELETE_CHUNK
    deleted = 0
    if connection.vendor == "postgresql":
        statement = f"DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} WHERE {where} LIMIT {chunk}))"
    else:
        statement = f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE {where} LIMIT {chunk})"
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, params)
            count = cursor.rowcount
        deleted += count
        if count < chunk:
            return deleted


def _partitions_drop(*, cutoff: datetime, report: PruneReport, history: HistoryTable = SAMPLES) -> None:
    """Drop every daily partition of this history wholly before ``cutoff``; a busy one is left for the next run."""
    for day, name in sorted(partitions_list(history).items()):
        if datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC) > cutoff:
            continue
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = %s", [name])
                rows = max(0, cursor.fetchone()[0])
                cursor.execute(f"SET LOCAL lock_timeout = '{DROP_LOCK_TIMEOUT}'")
                cursor.execute(f"DROP TABLE {name}")
        except OperationalError as exc:
            logger.warning("could not drop %s now (%s); the next pruning retries", name, exc)
            report.skipped.append(name)
            continue
        report.partitions_dropped.append(name)
        report.partition_rows += rows


def _raw_delete(*, cutoff: datetime, history: HistoryTable = SAMPLES) -> int:
    """Delete raw values stamped before ``cutoff`` in chunks, owner by owner (each an index range)."""
    deleted = 0
    if samples_partitioned(history):
        # What the default partition caught from before the cutoff; the days went whole.
        return _delete_chunked(table=history.default_partition, where="timestamp < %s", params=[db_datetime(cutoff)])
    with connection.cursor() as cursor:
        cursor.execute(history.owners)
        owners = [row[0] for row in cursor.fetchall()]
    for owner in owners:
        deleted += _delete_chunked(
            table=history.table,
            where=f"{history.key_column} = %s AND timestamp < %s",
            params=[owner, db_datetime(cutoff)],
        )
    return deleted


def history_prune(*, now: datetime) -> PruneReport:
    """Enforce every retention at ``now`` (see the list at the top); safe to run while agents post."""
    report = PruneReport()
    cutoff = raw_cutoff(now=now)
    for history in HISTORY_TABLES:
        if samples_partitioned(history):
            _partitions_drop(cutoff=cutoff, report=report, history=history)
    report.samples_deleted = _raw_delete(cutoff=cutoff)
    report.series_samples_deleted = _raw_delete(cutoff=cutoff, history=SERIES_SAMPLES)
    report.rollups_5m_deleted = _delete_chunked(
        table=Rollup5m._meta.db_table,
        where="bucket < %s",
        params=[db_datetime(rollup_cutoff(now=now, hourly=False))],
    )
    report.rollups_1h_deleted = _delete_chunked(
        table=Rollup1h._meta.db_table,
        where="bucket < %s",
        params=[db_datetime(rollup_cutoff(now=now, hourly=True))],
    )
    for model, hourly in ((SeriesRollup5m, False), (SeriesRollup1h, True)):
        report.series_rollups_deleted += _delete_chunked(
            table=model._meta.db_table,
            where="bucket < %s",
            params=[db_datetime(rollup_cutoff(now=now, hourly=hourly))],
        )
    report.receipts_deleted = _delete_chunked(
        table=BatchReceipt._meta.db_table, where="received_at < %s", params=[db_datetime(receipts_cutoff(now=now))]
    )
    return report
