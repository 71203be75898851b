"""Labelled metrics: series (a host, a name, its labels), their values, and the cardinality limits.

One plain function stores readings (``labelled_samples_store``): the batch
path calls it for the ``metrics`` of the samples it stores, and any other
source of series (a remote-write collector) may call it the same way, inside
its transaction and holding the hosts' row locks.

Cardinality is bounded, so one host sending a new label set per reading
(a request id, a timestamp as a label) can neither fill the database nor slow
the others down:

- ``TWIN_SERIES_MAX_PER_HOST`` series per host, counted exactly in
  ``SeriesCount`` under the host's row lock;
- ``TWIN_SERIES_MAX_TOTAL`` in all, the sum of those counts, read only when a
  batch brings series that are new (two hosts creating series at the same
  instant may overshoot it by their own new series; it is a bound against
  runaway growth, not an accounting).

A reading of a new series beyond a limit is refused with the limit's name; its
sample and the sample's other values are stored. A capped host's batches cost
others nothing: every row they read or write is the host's own, or read
without a lock.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.db.models import Sum

from common.sql import sql_in
from metrics.models import Series, SeriesCount, SeriesKind, SeriesSample

# Keys looked up per statement: well under SQLite's parameter limit.
_LOOKUP_CHUNK = 5_000


@dataclass(frozen=True, slots=True)
class LabelledReading:
    """One value of a series at a time, from any source; ``kind`` and ``unit`` None when the source did not say."""

    host_id: int
    timestamp: datetime
    name: str
    labels: dict[str, str]
    value: float
    kind: str | None = None
    unit: str | None = None


def labels_canonical(labels: dict[str, str]) -> str:
    """The label set as one text: keys sorted, no spaces, so equal sets are equal texts."""
    return json.dumps(labels, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def series_key(name: str, labels: dict[str, str]) -> str:
    """The series' identity within its host: a 128-bit digest of the name and the canonical labels."""
    return hashlib.blake2b(f"{name}\0{labels_canonical(labels)}".encode(), digest_size=16).hexdigest()


def per_host_limit_reason(limit: int) -> str:
    return (
        f"series limit: the host has {limit:,} labelled series, the most one host may have "
        "(TWIN_SERIES_MAX_PER_HOST); readings of new series are refused, known ones are stored"
    )


def total_limit_reason(limit: int) -> str:
    return (
        f"series limit: the twin holds {limit:,} labelled series, the most it keeps in all "
        "(TWIN_SERIES_MAX_TOTAL); readings of new series are refused, known ones are stored"
    )


@dataclass(slots=True)
class _Known:
    pk: int
    kind: str
    unit: str


def labelled_samples_store(*, readings: Sequence[LabelledReading], received_at: datetime) -> dict[int, str]:
    """Store readings of labelled series; return the positions refused, with why.

    The caller holds the row locks of the readings' hosts and the transaction.

    1. Find the series the readings name (one lookup per few thousand keys).
    2. Create the new ones, in reading order, within the per-host and total
       limits; a reading of a new series beyond a limit is refused.
    3. Refuse a reading whose type or unit differs from its series' first
       report (a missing type or unit is the series' own).
    4. Insert the values; one already stored for (series, timestamp) is kept.
    """
    if not readings:
        return {}
    keys = [series_key(r.name, r.labels) for r in readings]
    known = _series_find(host_ids={r.host_id for r in readings}, keys=set(keys))
    refused: dict[int, str] = {}
    new_positions = [i for i, key in enumerate(keys) if (readings[i].host_id, key) not in known]
    if new_positions:
        _series_create(
            readings=readings, keys=keys, positions=new_positions, known=known, refused=refused, now=received_at
        )
    rows: list[tuple[int, datetime, datetime, float]] = []
    for position, reading in enumerate(readings):
        if position in refused:
            continue
        series = known[(reading.host_id, keys[position])]
        reason = _first_report_conflict(reading, series)
        if reason is not None:
            refused[position] = reason
            continue
        rows.append((series.pk, reading.timestamp, received_at, reading.value))
    if rows:
        SeriesSample.objects.bulk_create(
            [SeriesSample(series_id=s, timestamp=t, received_at=r, value=v) for s, t, r, v in rows],
            ignore_conflicts=True,
            batch_size=5_000,
        )
    return refused


def _first_report_conflict(reading: LabelledReading, series: _Known) -> str | None:
    if reading.kind is not None and reading.kind != series.kind:
        return f"{reading.name} is a {series.kind} since its first report; this reading says {reading.kind}"
    if reading.unit is not None and reading.unit != series.unit:
        return (
            f"{reading.name} is in {series.unit or 'no unit'} since its first report; this reading says {reading.unit}"
        )
    return None


def _series_find(*, host_ids: Iterable[int], keys: set[str]) -> dict[tuple[int, str], _Known]:
    """The stored series of these hosts among these keys, by (host, key)."""
    found: dict[tuple[int, str], _Known] = {}
    ordered = sorted(keys)
    hosts_condition, hosts_params = sql_in("host_id", sorted(host_ids))
    with connection.cursor() as cursor:
        for start in range(0, len(ordered), _LOOKUP_CHUNK):
            keys_condition, keys_params = sql_in("key", ordered[start : start + _LOOKUP_CHUNK])
            cursor.execute(
                f"SELECT id, host_id, key, kind, unit FROM {Series._meta.db_table} "
                f"WHERE {hosts_condition} AND {keys_condition}",
                [*hosts_params, *keys_params],
            )
            for pk, host_id, key, kind, unit in cursor.fetchall():
                found[(host_id, key)] = _Known(pk=pk, kind=kind, unit=unit)
    return found


def _series_create(
    *,
    readings: Sequence[LabelledReading],
    keys: list[str],
    positions: list[int],
    known: dict[tuple[int, str], _Known],
    refused: dict[int, str],
    now: datetime,
) -> None:
    """Create the series first named at ``positions`` within the limits; refuse the rest (see the module's doc).

    Adds what it creates to ``known`` and what it refuses to ``refused``.
    """
    per_host = settings.TWIN_SERIES_MAX_PER_HOST
    counts = dict(
        SeriesCount.objects.filter(host_id__in={readings[i].host_id for i in positions}).values_list(
            "host_id", "series"
        )
    )
    room_host = {host_id: per_host - counts.get(host_id, 0) for host_id in {readings[i].host_id for i in positions}}
    room_total: int | None = None
    if any(room > 0 for room in room_host.values()):
        total = SeriesCount.objects.aggregate(total=Sum("series"))["total"] or 0
        room_total = settings.TWIN_SERIES_MAX_TOTAL - total
    creating: dict[tuple[int, str], int] = {}
    for position in positions:
        reading = readings[position]
        pair = (reading.host_id, keys[position])
        if pair in creating:
            continue  # a second reading of a series this call creates (another timestamp)
        if room_host[reading.host_id] <= 0:
            refused[position] = per_host_limit_reason(per_host)
        elif room_total is not None and room_total <= 0:
            refused[position] = total_limit_reason(settings.TWIN_SERIES_MAX_TOTAL)
        else:
            creating[pair] = position
            room_host[reading.host_id] -= 1
            room_total = None if room_total is None else room_total - 1
    if not creating:
        return
    new = [
        Series(
            host_id=readings[p].host_id,
            name=readings[p].name,
            labels=readings[p].labels,
            key=keys[p],
            kind=readings[p].kind or SeriesKind.GAUGE,
            unit=readings[p].unit or "",
            created_at=now,
        )
        for p in creating.values()
    ]
    Series.objects.bulk_create(new, batch_size=2_000)
    if any(s.pk is None for s in new):
        # A database that cannot return the new ids (none of ours): read them back.
        known.update(_series_find(host_ids={h for h, _ in creating}, keys={k for _, k in creating}))
    else:
        known.update({(s.host_id, s.key): _Known(pk=s.pk, kind=s.kind, unit=s.unit) for s in new})
    added: dict[int, int] = {}
    for host_id, _ in creating:
        added[host_id] = added.get(host_id, 0) + 1
    SeriesCount.objects.bulk_create(
        [SeriesCount(host_id=h, series=counts.get(h, 0) + n) for h, n in added.items()],
        update_conflicts=True,
        unique_fields=["host"],
        update_fields=["series"],
    )
