"""Ingestion of metric batches: validate, store, keep the latest values, announce."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from operator import attrgetter
from typing import Any, NamedTuple

import msgspec
from django.conf import settings
from django.db import connection, transaction

from common.events import event_publish_on_commit, hosts_changed
from common.sql import sql_in
from hosts.models import Host
from hosts.selectors import hostnames_virtual, hosts_reported_for
from hosts.services import HostFacts, InterfaceFacts, hosts_facts_record, hosts_lock_or_create, interfaces_record
from metrics.fields import COUNTERS, FIELD_NAMES, LINK_TRAFFIC, METRIC_FIELDS
from metrics.models import BatchReceipt, InterfaceCounters, LatestMetrics, Sample
from metrics.rates import link_throughput_gbps
from metrics.schema import Rejection, SampleIn, samples_validate


@dataclass(frozen=True)
class BatchOrigin:
    """Who sent a batch and under which name.

    ``reporter`` is the hostname of the signing credential and ``reporter_id``
    its host ("" and None for an unsigned batch in open mode, which may write
    for any host). ``agent_session`` and ``sequence`` name the batch so a
    replay stores nothing.
    """

    reporter: str = ""
    reporter_id: int | None = None
    agent_session: str | None = None
    sequence: int | None = None


@dataclass
class IngestResult:
    """What became of a batch: stored, already stored before, or refused (with why)."""

    received_at: datetime
    accepted: int = 0
    duplicates: int = 0
    duplicate_batch: bool = False
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def nothing_valid(self) -> bool:
        """True when every sample was refused: the batch as a whole is a client error."""
        return self.accepted == 0 and self.duplicates == 0 and bool(self.rejected)


class _DuplicateBatch(Exception):
    """Raised inside the transaction to roll back a batch already stored by an earlier try."""


def samples_ingest(
    *, raw_samples: list[msgspec.Raw], received_at: datetime, origin: BatchOrigin | None = None
) -> IngestResult:
    """Store every valid sample of a batch and refuse the others with a reason.

    1. Validate each sample on its own; a bad one never spoils the rest.
    2. Refuse samples for hosts the sender may not write for, and a second
       sample for the same host and timestamp.
    3. In one transaction: lock the hosts (creating new ones), skip samples
       already stored, insert the rest, update each host's inventory facts and
       latest values, and record the batch's (session, sequence). If an earlier
       try of this batch already recorded it, roll everything back and answer
       "duplicate".
    4. Announce the hosts that changed once the transaction has committed.

    Either all valid samples of the batch are stored or none is.
    """
    origin = origin or BatchOrigin()
    result = IngestResult(received_at=received_at)
    skew = timedelta(seconds=settings.TWIN_MAX_FUTURE_SKEW_SECONDS)
    checked: list[tuple[int, SampleIn]] = []
    for index, sample in enumerate(samples_validate(raw_samples, now=received_at, max_future_skew=skew)):
        if isinstance(sample, str):
            result.rejected.append(Rejection(index=index, reason=sample))
        else:
            checked.append((index, sample))
    valid = _samples_admit(checked=checked, origin=origin, rejected=result.rejected)
    result.rejected.sort(key=lambda r: r.index)
    if not valid:
        return result
    try:
        with transaction.atomic():
            stored, duplicates = _samples_store(samples=valid, received_at=received_at)
            if not _batch_record(origin=origin, received_at=received_at, accepted=stored):
                raise _DuplicateBatch
    except _DuplicateBatch:
        result.duplicate_batch = True
        return result
    result.accepted, result.duplicates = stored, duplicates
    return result


def _samples_admit(
    *, checked: list[tuple[int, SampleIn]], origin: BatchOrigin, rejected: list[Rejection]
) -> list[SampleIn]:
    """Keep the samples this sender may write, once per host and timestamp; refuse the rest.

    A credential writes its own host, and the hosts an admin granted it
    (``Host.reports_for``). A virtual node (the core switch) has no agent of
    its own: only a granted reporter writes for it, never an unsigned batch.
    """
    hostnames = {sample.hostname for _, sample in checked}
    # A signed batch for the signer's own host needs no lookup: authentication
    # refuses a virtual host's credential (hosts.authentication).
    own_only = origin.reporter_id is not None and hostnames <= {origin.reporter}
    virtual = set() if own_only else hostnames_virtual(hostnames=hostnames)
    granted: set[str] = set()
    if origin.reporter_id is not None and hostnames - {origin.reporter}:
        # Rights are only looked up for the rare batch that needs them.
        granted = hosts_reported_for(host_id=origin.reporter_id)
    admitted: list[SampleIn] = []
    first_index: dict[tuple[str, datetime], int] = {}
    for index, sample in checked:
        reason = _refusal_for_sender(sample.hostname, origin=origin, granted=granted, virtual=virtual)
        if reason is not None:
            rejected.append(Rejection(index=index, reason=reason, hostname=sample.hostname))
            continue
        key = (sample.hostname, sample.timestamp)
        if key in first_index:
            reason = f"duplicate of sample {first_index[key]} (same hostname and timestamp)"
            rejected.append(Rejection(index=index, reason=reason, hostname=sample.hostname))
            continue
        first_index[key] = index
        admitted.append(sample)
    return admitted


def _refusal_for_sender(hostname: str, *, origin: BatchOrigin, granted: set[str], virtual: set[str]) -> str | None:
    """Why this sender may not write for ``hostname``, or None when it may."""
    if hostname in granted:
        return None
    if hostname in virtual:
        return (
            f"virtual host: {hostname} has no agent of its own; only a host an admin granted "
            "'reports for' it may report for it"
        )
    if origin.reporter_id is not None and hostname != origin.reporter:
        return (
            f"foreign hostname: the credential of {origin.reporter} may not report for "
            f"{hostname} (an admin can grant it in the host's 'reports for')"
        )
    return None


def _batch_record(*, origin: BatchOrigin, received_at: datetime, accepted: int) -> bool:
    """Record the batch's (reporter, session, sequence); False if an earlier try already did.

    One ``INSERT ... ON CONFLICT DO NOTHING`` (PostgreSQL and SQLite alike): a
    concurrent retry blocks on the unique index until the first try commits,
    then finds the row taken. A batch with no name (the seed's unsigned
    format) is not recorded.
    """
    if origin.agent_session is None or origin.sequence is None:
        return True
    table = BatchReceipt._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (reporter, agent_session, sequence, received_at, accepted) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (reporter, agent_session, sequence) DO NOTHING RETURNING id",
            [origin.reporter, origin.agent_session, origin.sequence, _db_datetime(received_at), accepted],
        )
        return cursor.fetchone() is not None


def _samples_store(*, samples: list[SampleIn], received_at: datetime) -> tuple[int, int]:
    """Write samples inside the caller's transaction; return (stored, already stored).

    The statements after the lock are plain SQL on Django's connection: on
    this path, building each ORM query cost more than running it (profile in
    bench/analysis.md).
    """
    by_host: dict[str, list[SampleIn]] = defaultdict(list)
    for s in samples:
        by_host[s.hostname].append(s)
    for batch in by_host.values():
        if len(batch) > 1:
            batch.sort(key=_timestamp)
    # What each host's newest sample says: a new host is created with it (hosts_lock_or_create).
    hosts = hosts_lock_or_create(hostnames=by_host, facts={name: _host_facts(b[-1]) for name, b in by_host.items()})
    if connection.vendor == "postgresql" and len(samples) < COPY_MIN_ROWS:
        # A small batch (an agent's every 10 s): insert and learn what was new in one round trip.
        rows = [
            (hosts[name].pk, s.timestamp, received_at, *_metric_values(s)) for name, b in by_host.items() for s in b
        ]
        stored = _samples_insert_new(rows)
        new_by_host = {name: [s for s in b if (hosts[name].pk, s.timestamp) in stored] for name, b in by_host.items()}
        rows = [row for row in rows if (row[0], row[1]) in stored]
    else:
        already = _samples_already_stored(hosts=hosts, samples=samples)
        new_by_host = {
            name: [s for s in batch if (hosts[name].pk, s.timestamp) not in already] if already else batch
            for name, batch in by_host.items()
        }
        rows = [
            (hosts[name].pk, s.timestamp, received_at, *_metric_values(s))
            for name, batch in new_by_host.items()
            for s in batch
        ]
        _samples_insert(rows)
    _latest_update(hosts=hosts, new_by_host=new_by_host, received_at=received_at)
    if any(s.interfaces for batch in new_by_host.values() for s in batch):
        _interfaces_update(hosts=hosts, new_by_host=new_by_host)
    if rows:
        event_publish_on_commit(hosts_changed(hostnames=[name for name, batch in new_by_host.items() if batch]))
    return len(rows), len(samples) - len(rows)


def _values_of(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """A fast reader of these attributes, always as a tuple (``attrgetter`` of one name is not)."""
    if len(names) == 1:
        one = attrgetter(names[0])
        return lambda obj: (one(obj),)
    return attrgetter(*names)


# A sample's metric values in registry order (the columns' order below).
_metric_values = _values_of(FIELD_NAMES)
_timestamp = attrgetter("timestamp")


# Up to this many timestamps, ask for them exactly: a small batch spanning a
# long time (a spooled sample from last week beside today's) must not scan all
# the history in between.
EXACT_LOOKUP_MAX = 64

SAMPLE_COLUMNS = ("host_id", "timestamp", "received_at", *FIELD_NAMES)
# Fewer rows than this go in one INSERT: COPY's extra round trip costs more
# than it saves on a handful of rows.
COPY_MIN_ROWS = 16


def _samples_already_stored(*, hosts: dict[str, Host], samples: list[SampleIn]) -> set[tuple[int, datetime]]:
    """(host id, timestamp) of the batch's samples stored by an earlier try of it.

    The unique (host, timestamp) pair makes a retry idempotent instead of an
    IntegrityError.
    """
    host_filter, host_params = sql_in("host_id", [h.pk for h in hosts.values()])
    times = sorted({s.timestamp for s in samples})
    if len(times) <= EXACT_LOOKUP_MAX:
        time_filter, time_params = sql_in("timestamp", [_db_datetime(t) for t in times])
    else:
        # A time range rather than a list of hundreds of timestamps: one scan
        # of the (host, timestamp) index, several times cheaper (bench/analysis.md).
        time_filter, time_params = "timestamp BETWEEN %s AND %s", [_db_datetime(times[0]), _db_datetime(times[-1])]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT host_id, timestamp FROM {Sample._meta.db_table} WHERE {host_filter} AND {time_filter}",
            [*host_params, *time_params],
        )
        return {(host_id, _aware(ts)) for host_id, ts in cursor.fetchall()}


def _samples_insert(rows: list[tuple]) -> None:
    """Insert history rows (tuples in ``SAMPLE_COLUMNS`` order) in the caller's transaction.

    On PostgreSQL many rows go through ``COPY``, several times faster than an
    INSERT of model instances (see bench/results.md). Neither skips conflicts,
    which is safe here: the caller holds the hosts' row locks and has removed
    samples already stored.
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
    _rows_insert(f"INSERT INTO {table} ({columns})", rows)


def _samples_insert_new(rows: list[tuple]) -> set[tuple[int, datetime]]:
    """Insert a few history rows, skipping those stored by an earlier try; return (host id, timestamp) of the new.

    PostgreSQL only (``RETURNING`` of what ``ON CONFLICT DO NOTHING`` kept);
    the caller holds the hosts' row locks, so no concurrent batch inserts the
    same keys meanwhile.
    """
    width = len(SAMPLE_COLUMNS)
    values = ", ".join([f"({_placeholders(width)})"] * len(rows))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Sample._meta.db_table} ({', '.join(SAMPLE_COLUMNS)}) VALUES {values} "
            "ON CONFLICT (host_id, timestamp) DO NOTHING RETURNING host_id, timestamp",
            [v for row in rows for v in row],
        )
        return set(cursor.fetchall())


# A statement takes at most 32,766 parameters on SQLite (65,535 on PostgreSQL).
MAX_PARAMETERS = 30_000


def _rows_insert(head: str, rows: list[tuple], tail: str = "") -> None:
    """Run ``<head> VALUES (…), (…) <tail>`` for the rows, in as few statements as the parameter limit allows."""
    width = len(rows[0])
    per_statement = MAX_PARAMETERS // width
    with connection.cursor() as cursor:
        for start in range(0, len(rows), per_statement):
            part = rows[start : start + per_statement]
            values = ", ".join([f"({_placeholders(width)})"] * len(part))
            cursor.execute(f"{head} VALUES {values} {tail}", [_db_value(v) for row in part for v in row])


# A host's row of latest values; its fields are the table's columns, in this order.
_Latest = NamedTuple(  # type: ignore[misc]  # the metric columns come from the registry
    "_Latest",
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
_COUNTER_NAMES = tuple(f.name for f in COUNTERS)
_counter_values = _values_of(_COUNTER_NAMES)
# Where the link's traffic counters sit among the counters.
_TX, _RX = (_COUNTER_NAMES.index(name) for name in LINK_TRAFFIC)


LATEST_COLUMNS = _Latest._fields


def _latest_update(*, hosts: dict[str, Host], new_by_host: dict[str, list[SampleIn]], received_at: datetime) -> None:
    """Move each host's latest values forward to its newest sample, never backwards.

    The hosts are locked by the caller, so the stored values read here cannot
    change before the upsert below.
    """
    # A query of its own, after the lock: under READ COMMITTED a statement that
    # waited for a host's lock still sees the joined rows as they were when it
    # started, so reading the latest values in the locking query itself let a
    # concurrent batch's newer values be overwritten (caught by
    # tests/e2e/test_concurrency.py).
    stored = _latest_read(host_ids=[hosts[n].pk for n, batch in new_by_host.items() if batch])
    latest_rows: list[_Latest] = []
    facts: dict[Host, HostFacts] = {}
    for name, batch in new_by_host.items():
        if not batch:
            continue
        host = hosts[name]
        current = stored.get(host.pk)
        newest = batch[-1]
        if current is not None and newest.timestamp <= current.sample_time:
            # Every sample here is older than what is shown: history only.
            latest_rows.append(current._replace(last_seen=max(current.last_seen, received_at)))
            continue
        latest_rows.append(_latest_from(current=current, batch=batch, received_at=received_at, host_id=host.pk))
        facts[host] = _host_facts(newest)
    _latest_write(latest_rows)
    hosts_facts_record(facts=facts)


def _latest_read(*, host_ids: list[int]) -> dict[int, _Latest]:
    if not host_ids:
        return {}
    condition, params = sql_in("host_id", host_ids)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(LATEST_COLUMNS)} FROM {LatestMetrics._meta.db_table} WHERE {condition}", params
        )
        rows = [_Latest(*(_aware(v) if isinstance(v, datetime) else v for v in row)) for row in cursor.fetchall()]
    return {row.host_id: row for row in rows}


def _latest_write(rows: list[_Latest]) -> None:
    """Insert or replace the hosts' latest values, one statement per parameter limit (PostgreSQL and SQLite alike)."""
    if not rows:
        return
    head = f"INSERT INTO {LatestMetrics._meta.db_table} ({', '.join(LATEST_COLUMNS)})"
    tail = f"ON CONFLICT (host_id) DO UPDATE SET {', '.join(f'{c} = EXCLUDED.{c}' for c in LATEST_COLUMNS[1:])}"
    if connection.vendor == "postgresql" and len(rows) > 1:
        # One array a column: a short statement psycopg parses once (see common.sql.sql_in).
        with connection.cursor() as cursor:
            cursor.execute(
                f"{head} SELECT * FROM unnest({_latest_array_casts()}) {tail}",
                [list(c) for c in zip(*rows, strict=True)],
            )
        return
    _rows_insert(head, rows, tail)


@cache
def _latest_array_casts() -> str:
    """``%s::<type>[]`` for each column of the latest values, in ``LATEST_COLUMNS`` order."""
    fields = {f.column: f for f in LatestMetrics._meta.concrete_fields}
    return ", ".join(f"%s::{fields[c].db_type(connection)}[]" for c in LATEST_COLUMNS)


def _latest_from(*, current: _Latest | None, batch: list[SampleIn], received_at: datetime, host_id: int) -> _Latest:
    """The latest values after ``batch`` (sorted, all newer than ``current``)."""
    newest = batch[-1]
    # The two newest counter readings give the rates (the link throughput).
    if len(batch) >= 2:
        prev_time, prev_counters = batch[-2].timestamp, _counter_values(batch[-2])
    elif current is not None:
        prev_time, prev_counters = current.sample_time, _counter_values(current)
    else:
        prev_time, prev_counters = None, (None,) * len(COUNTERS)
    counters = _counter_values(newest)
    return _Latest(
        host_id,
        max(current.last_seen, received_at) if current else received_at,
        newest.timestamp,
        *_metric_values(newest),
        prev_time,
        *prev_counters,
        link_throughput_gbps(
            sample_time=newest.timestamp,
            tx=counters[_TX],
            rx=counters[_RX],
            prev_time=prev_time,
            prev_tx=prev_counters[_TX],
            prev_rx=prev_counters[_RX],
        ),
    )


def _interfaces_update(*, hosts: dict[str, Host], new_by_host: dict[str, list[SampleIn]]) -> None:
    """Move each reported interface's counters forward to its host's newest sample, never backwards.

    1. Record the interfaces the newest samples name (``hosts.services.interfaces_record``).
    2. Read their stored readings; skip an interface whose stored reading is
       as new as the sample (a late sample is history only).
    3. The previous reading is the batch's second newest sample's, when it
       names the interface, else the stored one; the throughput between the
       two is reset-safe (``metrics.rates``).
    4. Upsert them all in one statement.
    The history keeps no per-interface counters: the twin at a past time
    measures links by their hosts' totals.
    """
    newest = {hosts[name].pk: batch for name, batch in new_by_host.items() if batch and batch[-1].interfaces}
    if not newest:
        return
    ids = interfaces_record(
        facts={
            host_id: [
                InterfaceFacts(name=i.name, speed_mbps=i.speed_mbps, mac=i.mac.lower() if i.mac else None)
                for i in batch[-1].interfaces
            ]
            for host_id, batch in newest.items()
        }
    )
    stored = {c.interface_id: c for c in InterfaceCounters.objects.filter(interface_id__in=list(ids.values()))}
    rows = []
    for host_id, batch in newest.items():
        sample = batch[-1]
        before = {i.name: i for i in batch[-2].interfaces or ()} if len(batch) >= 2 else {}
        for reading in sample.interfaces:
            interface_id = ids[(host_id, reading.name)]
            current = stored.get(interface_id)
            if current is not None and current.sample_time >= sample.timestamp:
                continue
            if reading.name in before:
                prev_time, prev = batch[-2].timestamp, before[reading.name]
                prev_rx, prev_tx = prev.rx_bytes, prev.tx_bytes
            elif current is not None:
                prev_time, prev_rx, prev_tx = current.sample_time, current.rx_bytes, current.tx_bytes
            else:
                prev_time = prev_rx = prev_tx = None
            rows.append(
                InterfaceCounters(
                    interface_id=interface_id,
                    sample_time=sample.timestamp,
                    rx_bytes=reading.rx_bytes,
                    tx_bytes=reading.tx_bytes,
                    prev_sample_time=prev_time,
                    prev_rx_bytes=prev_rx,
                    prev_tx_bytes=prev_tx,
                    throughput_gbps=link_throughput_gbps(
                        sample_time=sample.timestamp,
                        tx=reading.tx_bytes,
                        rx=reading.rx_bytes,
                        prev_time=prev_time,
                        prev_tx=prev_tx,
                        prev_rx=prev_rx,
                    ),
                )
            )
    if rows:
        InterfaceCounters.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["interface"],
            update_fields=[f.name for f in InterfaceCounters._meta.concrete_fields if f.name != "interface"],
        )


def _placeholders(count: int) -> str:
    return ", ".join(["%s"] * count)


def _db_value(value: object) -> object:
    """A parameter as the ORM would send it (SQLite stores datetimes as naive UTC text)."""
    return _db_datetime(value) if isinstance(value, datetime) else value


def _db_datetime(value: datetime) -> object:
    return connection.ops.adapt_datetimefield_value(value)


def _aware(value: datetime) -> datetime:
    """A datetime read by plain SQL: aware on PostgreSQL, naive UTC on SQLite."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _host_facts(sample: SampleIn) -> HostFacts:
    """What a sample says about its host."""
    position = sample.position
    return HostFacts(
        agent_version=sample.agent_version,
        platform=sample.platform,
        rack=sample.rack,
        position=(position.x, position.y, position.z) if position is not None else None,
    )
