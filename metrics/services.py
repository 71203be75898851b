"""Ingestion of metric batches: validate, store, keep the latest values, announce."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any

import msgspec
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from commands.models import Cause
from commands.schema import AgentInvocation
from commands.services import invocations_dispatch
from common.errors import Refused
from common.events import event_publish_on_commit, hosts_changed
from hosts.models import Host
from hosts.schema import hostname_normalize
from hosts.selectors import AgentIdentity, hostnames_virtual, hosts_reported_for
from hosts.services import (
    HostFacts,
    InterfaceFacts,
    NeighbourFact,
    hosts_facts_record,
    hosts_lock_or_create,
    interfaces_record,
    links_learn,
)
from metrics.fields import COUNTERS, FIELD_NAMES, LINK_TRAFFIC
from metrics.instruments import batch_observe
from metrics.models import InterfaceCounters
from metrics.rates import link_throughput_gbps
from metrics.schema import BatchEnvelope, MetricsRefusal, Rejection, SampleIn, samples_validate
from metrics.series import LabelledReading, labelled_samples_store
from metrics.statements import (
    COPY_MIN_ROWS,
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
    # Labelled metrics of stored samples that were not stored (a series limit, a type changed).
    metrics_refused: list[MetricsRefusal] = field(default_factory=list)

    @property
    def nothing_valid(self) -> bool:
        """True when every sample was refused: the batch as a whole is a client error."""
        return self.accepted == 0 and self.duplicates == 0 and bool(self.rejected)


class _DuplicateBatch(Exception):
    """Raised inside the transaction to roll back a batch already stored by an earlier try."""


class BatchRefused(Refused):
    """A batch refused as a whole before anything is stored (``malformed_batch``, 400)."""

    def __init__(self, detail: str) -> None:
        super().__init__("malformed_batch", detail)


@dataclass
class BatchReceived:
    """What the answer to a batch says: what became of its samples, and the agent's pending invocations."""

    result: IngestResult
    invocations: list[AgentInvocation] = field(default_factory=list)


def batch_receive(*, batch: BatchEnvelope, identity: AgentIdentity | None) -> BatchReceived:
    """Take a decoded batch from an agent (``identity``, None when unsigned in open mode).

    1. Refuse a batch with no samples: an agent whose collector produced
       nothing has a fault to see (docs/api.md), not a success to acknowledge.
    2. Refuse a signed batch without ``agent_session`` and ``sequence``: they
       make a retry store nothing the second time.
    3. Ingest the samples (``samples_ingest``), timed for the ingest's metrics.
    4. A signed batch with something valid carries the agent's pending command
       invocations: piggy-backed on its own traffic, no extra request for an
       agent reporting every 10 s.
    """
    if not batch.samples:
        raise BatchRefused("The batch has no samples; send at least one.")
    if identity is not None and (batch.agent_session is None or batch.sequence is None):
        raise BatchRefused("A signed batch carries agent_session and sequence, so a retry is never stored twice.")
    origin = BatchOrigin(
        reporter=identity.hostname if identity else "",
        reporter_id=identity.host_id if identity else None,
        agent_session=batch.agent_session,
        sequence=batch.sequence,
    )
    started = time.perf_counter()
    result = samples_ingest(raw_samples=batch.samples, received_at=timezone.now(), origin=origin)
    batch_observe(result, seconds=time.perf_counter() - started)
    received = BatchReceived(result=result)
    if identity is not None and not result.nothing_valid:
        received.invocations = invocations_dispatch(host_id=identity.host_id, now=timezone.now(), cause=Cause.BATCH)
    return received


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
    # Where each sample sits in the batch, for the refusals of its labelled metrics.
    index_of = {id(sample): index for index, sample in checked}
    result.rejected.sort(key=lambda r: r.index)
    if not valid:
        return result
    try:
        with transaction.atomic():
            stored, duplicates = _samples_store(
                samples=valid, received_at=received_at, index_of=index_of, metrics_refused=result.metrics_refused
            )
            if not _batch_record(origin=origin, received_at=received_at, accepted=stored):
                raise _DuplicateBatch
    except _DuplicateBatch:
        result.duplicate_batch = True
        result.metrics_refused.clear()
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

    A batch with no name (the seed's unsigned format) is not recorded.
    """
    if origin.agent_session is None or origin.sequence is None:
        return True
    return batch_receipt_insert(
        reporter=origin.reporter,
        agent_session=origin.agent_session,
        sequence=origin.sequence,
        received_at=received_at,
        accepted=accepted,
    )


def _samples_store(
    *,
    samples: list[SampleIn],
    received_at: datetime,
    index_of: dict[int, int] | None = None,
    metrics_refused: list[MetricsRefusal] | None = None,
) -> tuple[int, int]:
    """Write samples inside the caller's transaction; return (stored, already stored).

    The labelled metrics of the samples stored go to their series
    (``metrics.series``); those refused are added to ``metrics_refused``,
    by the sample's place in the batch (``index_of``, by ``id`` of the sample).

    The statements after the lock are ``metrics.statements``. Neither insert
    meets a conflict from a concurrent batch: the hosts' row locks are held
    here, and samples stored by an earlier try are left out (a retry is
    idempotent instead of an IntegrityError).
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
        stored = samples_insert_new(rows)
        new_by_host = {name: [s for s in b if (hosts[name].pk, s.timestamp) in stored] for name, b in by_host.items()}
        rows = [row for row in rows if (row[0], row[1]) in stored]
        stored_latest = None
    else:
        stored_latest = latest_heads_read(host_ids=[h.pk for h in hosts.values()])
        already = _samples_maybe_stored(hosts=hosts, by_host=by_host, latest=stored_latest)
        new_by_host = {
            name: [s for s in batch if (hosts[name].pk, s.timestamp) not in already] if already else batch
            for name, batch in by_host.items()
        }
        rows = [
            (hosts[name].pk, s.timestamp, received_at, *_metric_values(s))
            for name, batch in new_by_host.items()
            for s in batch
        ]
        samples_insert(rows)
    _latest_update(hosts=hosts, new_by_host=new_by_host, received_at=received_at, stored=stored_latest)
    if any(s.interfaces for batch in new_by_host.values() for s in batch):
        _interfaces_update(hosts=hosts, new_by_host=new_by_host)
    if any(s.metrics for batch in new_by_host.values() for s in batch):
        refusals = _labelled_store(
            hosts=hosts, new_by_host=new_by_host, received_at=received_at, index_of=index_of or {}
        )
        if metrics_refused is not None:
            metrics_refused.extend(refusals)
    if rows:
        event_publish_on_commit(hosts_changed(hostnames=[name for name, batch in new_by_host.items() if batch]))
    return len(rows), len(samples) - len(rows)


def _samples_maybe_stored(
    *, hosts: dict[str, Host], by_host: dict[str, list[SampleIn]], latest: dict[int, LatestHead]
) -> set[tuple[int, datetime]]:
    """(host id, timestamp) of the batch's samples stored already, looked up only where one may be.

    A host's latest values hold its newest stored sample (every history row is
    written here, with them, and they never move backwards), so samples all
    newer than it are new: the steady state reads no history. A retry, a late
    sample, or a host with no latest values yet is looked up.
    """
    unsure = [
        name
        for name, batch in by_host.items()
        if (current := latest.get(hosts[name].pk)) is None or batch[0].timestamp <= current.sample_time
    ]
    if not unsure:
        return set()
    return samples_stored(
        host_ids=[hosts[name].pk for name in unsure], times=[s.timestamp for name in unsure for s in by_host[name]]
    )


def _values_of(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """A fast reader of these attributes, always as a tuple (``attrgetter`` of one name is not)."""
    if len(names) == 1:
        one = attrgetter(names[0])
        return lambda obj: (one(obj),)
    return attrgetter(*names)


# A sample's metric values in registry order (the columns' order below).
_metric_values = _values_of(FIELD_NAMES)
_timestamp = attrgetter("timestamp")


_COUNTER_NAMES = tuple(f.name for f in COUNTERS)
_counter_values = _values_of(_COUNTER_NAMES)
# Where the link's traffic counters sit among the counters.
_TX, _RX = (_COUNTER_NAMES.index(name) for name in LINK_TRAFFIC)


def _latest_update(
    *,
    hosts: dict[str, Host],
    new_by_host: dict[str, list[SampleIn]],
    received_at: datetime,
    stored: dict[int, LatestHead] | None = None,
) -> None:
    """Move each host's latest values forward to its newest sample, never backwards.

    The hosts are locked by the caller, so the stored values read here (or
    by the caller, after the lock: ``stored``) cannot change before the
    upsert below.
    """
    # A query of its own, after the lock: under READ COMMITTED a statement that
    # waited for a host's lock still sees the joined rows as they were when it
    # started, so reading the latest values in the locking query itself let a
    # concurrent batch's newer values be overwritten (caught by
    # tests/e2e/test_concurrency.py).
    if stored is None:
        stored = latest_heads_read(host_ids=[hosts[n].pk for n, batch in new_by_host.items() if batch])
    latest_rows: list[LatestRow] = []
    late: list[int] = []
    facts: dict[Host, HostFacts] = {}
    for name, batch in new_by_host.items():
        if not batch:
            continue
        host = hosts[name]
        current = stored.get(host.pk)
        newest = batch[-1]
        if current is not None and newest.timestamp <= current.sample_time:
            # Every sample here is older than what is shown: history only.
            late.append(host.pk)
            continue
        latest_rows.append(_latest_from(current=current, batch=batch, received_at=received_at, host_id=host.pk))
        facts[host] = _host_facts(newest)
    latest_write(latest_rows)
    latest_seen_touch(host_ids=late, seen=received_at)
    hosts_facts_record(facts=facts)


def _latest_from(
    *, current: LatestHead | None, batch: list[SampleIn], received_at: datetime, host_id: int
) -> LatestRow:
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
    return LatestRow(
        host_id,
        received_at,  # or the stored last contact, if later: latest_write keeps it
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
    An interface that names its LLDP neighbour may teach the twin a link
    (``hosts.services.links_learn``: only to a switch the inventory holds).
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
    neighbours = [
        NeighbourFact(host_id=host_id, interface_id=ids[(host_id, i.name)], switch=switch, port=i.neighbor.port)
        for host_id, batch in newest.items()
        for i in batch[-1].interfaces
        if i.neighbor is not None and (switch := hostname_normalize(i.neighbor.chassis)) is not None
    ]
    if neighbours:
        links_learn(facts=neighbours)
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


def _labelled_store(
    *, hosts: dict[str, Host], new_by_host: dict[str, list[SampleIn]], received_at: datetime, index_of: dict[int, int]
) -> list[MetricsRefusal]:
    """Store the new samples' labelled metrics (``labelled_samples_store``); refusals by sample and reason."""
    readings: list[LabelledReading] = []
    origins: list[tuple[SampleIn, int]] = []
    for name, batch in new_by_host.items():
        host_id = hosts[name].pk
        for sample in batch:
            for position, metric in enumerate(sample.metrics or ()):
                readings.append(
                    LabelledReading(
                        host_id=host_id,
                        timestamp=sample.timestamp,
                        name=metric.name,
                        labels=metric.labels,
                        value=metric.value,
                        kind=metric.type,
                        unit=metric.unit,
                    )
                )
                origins.append((sample, position))
    refused = labelled_samples_store(readings=readings, received_at=received_at)
    grouped: dict[tuple[int, str], tuple[SampleIn, list[int]]] = {}
    for at, reason in sorted(refused.items()):
        sample, position = origins[at]
        grouped.setdefault((id(sample), reason), (sample, []))[1].append(position)
    refusals = [
        MetricsRefusal(
            index=index_of.get(key[0], -1), hostname=sample.hostname, metrics=tuple(positions), reason=key[1]
        )
        for key, (sample, positions) in grouped.items()
    ]
    refusals.sort(key=lambda r: (r.index, r.metrics[0]))
    return refusals


def _host_facts(sample: SampleIn) -> HostFacts:
    """What a sample says about its host."""
    position = sample.position
    return HostFacts(
        agent_version=sample.agent_version,
        platform=sample.platform,
        rack=sample.rack,
        position=(position.x, position.y, position.z) if position is not None else None,
    )
