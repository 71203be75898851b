"""Writes of the twin's own records: every change of every host's status, recorded once, and their pruning.

Its reads (a host's changes) are ``twin.selectors.host_status_events``.

Status is derived when read (``twin.status``), never stored as truth, so
nothing announces the moment a silent host turns stale. A recorder (the job
``twin.status_history``, every second, exactly once across processes) derives
each host's status now with the snapshot's own rules and compares it with the
last one it recorded (``HostStatusRecord``), as healthchecks' ``sendalerts``
does. Each change is timed by the facts, not by when the recorder looked:

- silence: a host with last contact L turned ``stale`` at L + ``TWIN_STALE_AFTER_SECONDS``
  and ``offline`` at L + ``TWIN_OFFLINE_AFTER_SECONDS``; both are recorded even
  if the recorder missed the first (it was down);
- data: a host that was not online came back when its first sample after the
  silence arrived (the earliest ``received_at`` since it was last seen);
- inventory: a host's first status (it joined the twin, or recording began),
  a virtual node whose links were rewired, thresholds changed.

A virtual node (the core switch) follows its liveliest neighbour: its changes
take the time and cause of the neighbour's change that made them.

Each change is published after commit as a ``host-status`` event to every reader.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction

from common.events import events_publish_on_commit, host_status_changed
from common.formats import iso_utc
from common.sql import aware, db_datetime, rows_fetch
from hosts.models import Host, Link
from metrics.models import LatestMetrics, Sample
from twin.models import HostStatusEvent, HostStatusRecord, StatusCause, StatusCheck
from twin.status import HostStatus, status_clock, virtual_status

# How far before the previous check arrivals are read again: a batch is
# stamped when it arrives and commits a moment later.
COMMIT_MARGIN = timedelta(seconds=60)
_RANK = {HostStatus.ONLINE: 0, HostStatus.STALE: 1, HostStatus.OFFLINE: 2}


@dataclass(frozen=True)
class Transition:
    """One change of one host's status."""

    host_id: int
    at: datetime
    from_status: str | None
    to_status: str
    cause: str


@dataclass
class _Host:
    id: int
    hostname: str
    is_virtual: bool
    created_at: datetime
    last_seen: datetime | None
    recorded: str | None
    recorded_seen: datetime | None


def _hosts_read() -> list[tuple]:
    """Every host as (id, hostname, is virtual, created, last contact, recorded status, its last contact then)."""
    host, latest, record = Host._meta.db_table, LatestMetrics._meta.db_table, HostStatusRecord._meta.db_table
    rows = rows_fetch(
        f"SELECT h.id, h.hostname, h.is_virtual, h.created_at, l.last_seen, r.status, r.seen FROM {host} h "
        f"LEFT JOIN {latest} l ON l.host_id = h.id LEFT JOIN {record} r ON r.host_id = h.id ORDER BY h.id"
    )
    if connection.vendor == "postgresql":
        return rows  # aware datetimes already
    return [(r[0], r[1], bool(r[2]), aware(r[3]), aware(r[4]), r[5], aware(r[6])) for r in rows]


def _first_arrivals(*, hosts: list[_Host], since: datetime) -> dict[int, datetime]:
    """For each host, its earliest sample received after its recorded last contact (and after ``since``)."""
    if not hosts:
        return {}
    after = {h.id: h.recorded_seen for h in hosts}
    first: dict[int, datetime] = {}
    ids = list(after)
    table = Sample._meta.db_table
    with connection.cursor() as cursor:
        for start in range(0, len(ids), 10_000):
            chunk = ids[start : start + 10_000]
            cursor.execute(
                f"SELECT host_id, received_at FROM {table} WHERE received_at > %s "
                f"AND host_id IN ({', '.join(['%s'] * len(chunk))})",
                [db_datetime(since), *chunk],
            )
            for host_id, received in cursor.fetchall():
                received = aware(received)
                seen = after[host_id]
                if (seen is None or received > seen) and (host_id not in first or received < first[host_id]):
                    first[host_id] = received
    return first


def _real_host_changes(
    host: _Host, *, first_arrival: datetime | None, now: datetime
) -> list[tuple[datetime, str, str]]:
    """A real host's changes since its recorded status: (at, to, cause), in time order."""
    changes: list[tuple[datetime, str, str]] = []
    current = host.recorded
    seen = host.last_seen
    if seen is None:
        return changes
    if current != HostStatus.ONLINE and (host.recorded_seen is None or seen > host.recorded_seen):
        changes.append((first_arrival or seen, HostStatus.ONLINE, StatusCause.DATA))
        current = HostStatus.ONLINE
    for target, after in (
        (HostStatus.STALE, settings.TWIN_STALE_AFTER_SECONDS),
        (HostStatus.OFFLINE, settings.TWIN_OFFLINE_AFTER_SECONDS),
    ):
        moment = seen + timedelta(seconds=after)
        if moment <= now and _RANK.get(current, -1) < _RANK[target]:  # type: ignore[arg-type]
            changes.append((moment, target, StatusCause.SILENCE))
            current = target
    return changes


def status_transitions_record(*, now: datetime) -> list[Transition]:
    """Record every host's status changes up to ``now``; return them (published after commit).

    1. Read every host's last contact and recorded status, and the links.
    2. Real hosts: replay what happened since the record (``_real_host_changes``);
       a host without a record gets its first status (cause inventory).
    3. Virtual nodes: replay their neighbours' changes in time order.
    4. Anything still unlike the status derived now (thresholds changed,
       links rewired) is recorded now, cause inventory.
    5. Write the changes and the records, in one transaction with the check time.
    """
    check = StatusCheck.objects.first()
    checked_at = check.checked_at if check else None
    derive = status_clock(now=now)
    status_now: dict[int, str] = {}
    before: dict[int, str] = {}
    changed: list[_Host] = []
    virtual: list[_Host] = []
    for row in _hosts_read():
        host_id, _, is_virtual, _, last_seen, recorded, recorded_seen = row
        if is_virtual:
            virtual.append(_Host(*row))
            continue
        derived = derive(last_seen)
        status_now[host_id] = derived
        before[host_id] = recorded or HostStatus.UNKNOWN
        # Most hosts: still online, or still as silent as recorded with no sample since.
        if recorded == derived and (derived == HostStatus.ONLINE or last_seen == recorded_seen):
            continue
        changed.append(_Host(*row))
    # Hosts whose first sample after a silence (or ever) arrived since the last look.
    coming_back = [
        h
        for h in changed
        if h.recorded != HostStatus.ONLINE
        and h.last_seen is not None
        and (h.recorded_seen is None or h.last_seen > h.recorded_seen)
    ]
    arrivals = _first_arrivals(hosts=coming_back, since=checked_at - COMMIT_MARGIN) if checked_at else {}

    transitions: list[Transition] = []
    changes_of: dict[int, list[tuple[datetime, str, str]]] = {}
    for h in changed:
        derived = status_now[h.id]
        if h.recorded is None:
            if checked_at is None:
                # Recording begins: what each host is now is all there is to say.
                transitions.append(Transition(h.id, now, None, derived, StatusCause.INVENTORY))
                continue
            first = _joined(h, first_arrival=arrivals.get(h.id))
            transitions.append(first)
            h = replace(h, recorded=first.to_status, recorded_seen=arrivals.get(h.id))
        changes = _real_host_changes(h, first_arrival=arrivals.get(h.id), now=now)
        current = h.recorded
        for at, to, cause in changes:
            transitions.append(Transition(h.id, at, current, to, cause))
            current = to
        if current != derived:
            transitions.append(Transition(h.id, now, current, derived, StatusCause.INVENTORY))
        changes_of[h.id] = changes

    if virtual:
        neighbours: dict[int, list[int]] = defaultdict(list)
        for source, target in rows_fetch(f"SELECT source_id, target_id FROM {Link._meta.db_table}"):
            neighbours[source].append(target)
            neighbours[target].append(source)
        for h in virtual:
            transitions += _virtual_changes(
                h,
                neighbours=neighbours[h.id],
                before=before,
                status_now=status_now,
                changes_of=changes_of,
                checked_at=checked_at,
                now=now,
            )
    _transitions_write(transitions, hosts={h.id: h for h in (*changed, *virtual)}, now=now)
    return transitions


def _joined(h: _Host, *, first_arrival: datetime | None) -> Transition:
    """A new host's first status: online from its first sample if that created it (ingest), else unknown."""
    if first_arrival is not None and first_arrival <= h.created_at:
        return Transition(h.id, first_arrival, None, HostStatus.ONLINE, StatusCause.INVENTORY)
    return Transition(h.id, h.created_at, None, HostStatus.UNKNOWN, StatusCause.INVENTORY)


def _virtual_changes(
    h: _Host,
    *,
    neighbours: list[int],
    before: dict[int, str],
    status_now: dict[int, str],
    changes_of: dict[int, list[tuple[datetime, str, str]]],
    checked_at: datetime | None,
    now: datetime,
) -> list[Transition]:
    """A virtual node's changes, taken from its neighbours' changes in time order."""
    own = status_clock(now=now)(h.last_seen) if h.last_seen else None
    derived = virtual_status(own=own, neighbours=[status_now[n] for n in neighbours if n in status_now])
    if h.recorded is None:
        at = min(max(h.created_at, checked_at), now) if checked_at else now
        return [Transition(h.id, at, None, derived, StatusCause.INVENTORY)]
    if h.recorded == derived:
        return []
    states = {n: before[n] for n in neighbours if n in before}
    timeline = sorted((at, n, to, cause) for n in neighbours for at, to, cause in changes_of.get(n, []))
    current = h.recorded
    result = []
    for at, n, to, cause in timeline:
        states[n] = to
        status = virtual_status(own=own, neighbours=list(states.values()))
        if status != current:
            result.append(Transition(h.id, at, current, status, cause))
            current = status
    if current != derived:
        moved = h.last_seen is not None and (h.recorded_seen is None or h.last_seen > h.recorded_seen)
        result.append(Transition(h.id, now, current, derived, StatusCause.DATA if moved else StatusCause.INVENTORY))
    return result


def _transitions_write(transitions: list[Transition], *, hosts: dict[int, _Host], now: datetime) -> None:
    with transaction.atomic():
        HostStatusEvent.objects.bulk_create(
            [
                HostStatusEvent(
                    host_id=t.host_id, at=t.at, from_status=t.from_status or "", to_status=t.to_status, cause=t.cause
                )
                for t in transitions
            ],
            batch_size=2000,
        )
        last: dict[int, Transition] = {}
        for t in transitions:
            if t.host_id not in last or t.at >= last[t.host_id].at:
                last[t.host_id] = t
        HostStatusRecord.objects.bulk_create(
            [
                HostStatusRecord(host_id=host_id, status=t.to_status, since=t.at, seen=hosts[host_id].last_seen)
                for host_id, t in last.items()
            ],
            update_conflicts=True,
            unique_fields=["host"],
            update_fields=["status", "since", "seen"],
            batch_size=2000,
        )
        if not StatusCheck.objects.update(checked_at=now):
            StatusCheck.objects.create(checked_at=now)
        events_publish_on_commit(
            [
                host_status_changed(
                    hostname=hosts[t.host_id].hostname,
                    from_status=t.from_status,
                    to_status=t.to_status,
                    at=iso_utc(t.at),
                    cause=t.cause,
                )
                for t in transitions
            ]
        )


# --------------------------------------------------------------------------- retention


def status_events_prune(*, now: datetime) -> int:
    """Delete status events older than the hourly rollups' retention; return how many."""
    cutoff = now - timedelta(days=settings.TWIN_HOURLY_RETENTION_DAYS)
    deleted, _ = HostStatusEvent.objects.filter(at__lt=cutoff).delete()
    return deleted
