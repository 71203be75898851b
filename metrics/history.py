"""Reads of the measurement history: one host's series, and every host's values as they were at a time.

Series (``series_read``) are aggregated in the database by the unit algebra of
``metrics.rollups``, from the coarsest level that still fills the step: raw
samples, 5-minute or hourly rollups. Rollups cover arrivals up to the rollup
job's last run; the rest of the range is read from raw samples in the same
query, so the newest points are never missing.

The twin at a past time (``host_rows_at``) gives the rows the snapshot builder
(``twin.snapshot``) reads live, as they were then: each host's newest sample
among those received by that time, its last contact, and the link throughput
from its two newest samples, from raw samples while they are kept and from
rollups after.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection

from common.sql import aware, db_datetime, epoch_to_datetime, iso_text, rows_fetch
from hosts.models import Host
from metrics.fields import COUNTERS, FIELD_NAMES, FIELDS_BY_KEY, LINK_TRAFFIC, METRIC_FIELDS, Kind
from metrics.models import LatestMetrics, Sample
from metrics.rates import link_throughput_gbps
from metrics.retention import raw_cutoff, rollup_cutoff
from metrics.rollups import (
    COMMIT_OVERLAP,
    COMPOSED_COLUMNS,
    FIVE_MINUTES,
    HOSTS,
    HOUR,
    RAW,
    SERIES,
    History,
    Level,
    composed_columns,
    rollups_progress,
    units_compose,
    units_from_rollups,
    units_from_samples,
)
from metrics.selectors import INVENTORY_COLUMNS

# A series answers about this many points unless asked for a step...
DEFAULT_POINTS = 1_000
# ...and never more than this many.
MAX_POINTS = 10_000
LEVELS = (RAW, FIVE_MINUTES, HOUR)


# --------------------------------------------------------------------------- series


@dataclass(frozen=True)
class Series:
    """A host's metrics in buckets of ``step`` seconds from ``start`` to ``end`` (whole buckets).

    ``values[key]`` holds ``avg``, ``min`` and ``max`` lists, one value per
    entry of ``times`` (bucket starts; empty buckets are left out); counters
    are rates per second.
    """

    start: datetime
    end: datetime
    step: int
    resolution: str
    times: list[datetime]
    values: dict[str, dict[str, list[Any]]]


def series_default_step(*, start: datetime, end: datetime) -> int:
    """About ``DEFAULT_POINTS`` points over the range, in whole seconds."""
    return max(1, math.ceil((end - start).total_seconds() / DEFAULT_POINTS))


def series_level(*, start: datetime, step: int, now: datetime) -> Level:
    """The coarsest level whose buckets fit in ``step``, or a coarser one if it no longer holds ``start``."""
    fitting = [level for level in LEVELS if level.seconds <= step]
    index = LEVELS.index(fitting[-1])
    kept_since = (raw_cutoff(now=now), rollup_cutoff(now=now, hourly=False), rollup_cutoff(now=now, hourly=True))
    while start < kept_since[index] and index < len(LEVELS) - 1:
        index += 1
    return LEVELS[index]


def _floor(moment: datetime, step: int) -> datetime:
    return epoch_to_datetime(math.floor(moment.timestamp() / step) * step)


def _ceil(moment: datetime, step: int) -> datetime:
    return epoch_to_datetime(math.ceil(moment.timestamp() / step) * step)


def series_read(
    *,
    host_id: int,
    start: datetime,
    end: datetime,
    step: int | None,
    keys: tuple[str, ...],
    now: datetime,
    level: Level | None = None,
) -> Series:
    """One host's series (see ``Series``); ``step`` None for about ``DEFAULT_POINTS`` points.

    ``level`` forces a level (tests and the benchmark compare them). The rows
    come from ``_buckets_read`` over the hosts' history.
    """
    first, last, step, level, rows = _buckets_read(
        history=HOSTS, key=host_id, start=start, end=end, step=step, now=now, level=level
    )
    return Series(
        start=first,
        end=last,
        step=step,
        resolution=level.name,
        times=[epoch_to_datetime(row[_GRP] * step) for row in rows],
        values={key: _series_values(key, rows) for key in keys},
    )


def labelled_series_read(
    *,
    series_id: int,
    kind: str,
    start: datetime,
    end: datetime,
    step: int | None,
    now: datetime,
    level: Level | None = None,
) -> Series:
    """One labelled series over time, by the same path as a host's fields (``_buckets_read``).

    ``values`` holds one entry, ``value``: a gauge's avg, min and max, or a
    counter's reset-safe rates per second.
    """
    first, last, step, level, rows = _buckets_read(
        history=SERIES, key=series_id, start=start, end=end, step=step, now=now, level=level
    )
    return Series(
        start=first,
        end=last,
        step=step,
        resolution=level.name,
        times=[epoch_to_datetime(row[_GRP] * step) for row in rows],
        values={"value": _stats(rows, name="value", kind=Kind(kind), column=_SERIES_COLUMN)},
    )


def _buckets_read(
    *,
    history: History,
    key: int,
    start: datetime,
    end: datetime,
    step: int | None,
    now: datetime,
    level: Level | None,
) -> tuple[datetime, datetime, int, Level, list[tuple]]:
    """The composed buckets of one host or series: (first, last, step, level, rows in ``composed_columns`` order).

    1. Choose the level (``series_level``) and round the step up to a whole
       number of its buckets; widen the range to whole steps (epoch-aligned).
    2. Read rollups up to what the rollup job has covered, raw samples after
       (``COMMIT_OVERLAP`` before its progress, so no arrival is missed).
    3. Compose them per step in one query (``metrics.rollups.units_compose``).
    """
    step = step or series_default_step(start=start, end=end)
    level = level or series_level(start=start, step=step, now=now)
    step = math.ceil(step / level.seconds) * level.seconds
    first, last = _floor(start, step), _ceil(end, step)
    if last <= first:
        last = first + timedelta(seconds=step)
    raw_from = first
    parts: list[str] = []
    params: list[Any] = []
    column = history.key
    if level is not RAW:
        progress = rollups_progress(history)
        if progress is not None:
            raw_from = min(max(_floor(progress - COMMIT_OVERLAP, step), first), last)
        if raw_from > first:
            parts.append(
                units_from_rollups(
                    level=level, where=f"r.{column} = %s AND r.bucket >= %s AND r.bucket < %s", history=history
                )
            )
            params += [key, db_datetime(first), db_datetime(raw_from)]
    if raw_from < last:
        parts.append(
            units_from_samples(where=f"s.{column} = %s AND s.timestamp >= %s AND s.timestamp < %s", history=history)
        )
        params += [key, db_datetime(raw_from), db_datetime(last)]
    composed = units_compose(
        units=" UNION ALL ".join(parts),
        group_seconds=step,
        pairs_within_groups=False,
        keep_ends=False,
        history=history,
    )
    return first, last, step, level, rows_fetch(f"{composed} ORDER BY grp", params)


_GRP = COMPOSED_COLUMNS.index("grp")
_COLUMN = {name: index for index, name in enumerate(COMPOSED_COLUMNS)}
_SERIES_COLUMN = {name: index for index, name in enumerate(composed_columns(SERIES))}


def _series_values(key: str, rows: list[tuple]) -> dict[str, list[Any]]:
    """avg, min and max of one metric per row; a counter's as rates (its rises over their seconds)."""
    field = FIELDS_BY_KEY[key]
    return _stats(rows, name=field.name, kind=field.kind, column=_COLUMN)


def _stats(rows: list[tuple], *, name: str, kind: Kind, column: dict[str, int]) -> dict[str, list[Any]]:
    """avg, min and max of the value ``name`` per row, from its columns by ``column``; a counter's as rates."""
    if kind == Kind.GAUGE:
        avg, low, high = (column[f"{name}_{part}"] for part in ("avg", "min", "max"))
        return {
            "avg": [row[avg] for row in rows],
            "min": [row[low] for row in rows],
            "max": [row[high] for row in rows],
        }
    rise, seconds = column[f"{name}_increase"], column[f"{name}_seconds"]
    low, high = column[f"{name}_rate_min"], column[f"{name}_rate_max"]
    return {
        "avg": [row[rise] / row[seconds] if row[seconds] else None for row in rows],
        "min": [row[low] for row in rows],
        "max": [row[high] for row in rows],
    }


# --------------------------------------------------------------------------- the twin at a time

# The newest samples of a fleet reporting every TWIN_HEARTBEAT_SECONDS arrived
# within a few heartbeats of any moment: one scan of that window finds the two
# newest of nearly every host, and hosts it misses are looked up one by one.
WINDOW_HEARTBEATS = 3
# How far back rollups are scanned at once before looking up hosts one by one.
ROLLUP_WINDOW = {FIVE_MINUTES.name: timedelta(hours=2), HOUR.name: timedelta(days=1)}
_SAMPLE_COLUMNS = ("host_id", "timestamp", "received_at", *FIELD_NAMES)
_TX, _RX = (FIELD_NAMES.index(name) for name in LINK_TRAFFIC)
_FIELDS = len(FIELD_NAMES)
# A host's measurements as of a time, in ``HOST_ROW``'s order after the inventory:
# last contact, the metrics, the link throughput, the last contact as text (or None).
Measured = tuple
_BLANK: Measured = (None,) * (_FIELDS + 3)


def history_level_at(*, at: datetime, now: datetime) -> Level:
    """Where the twin at ``at`` is read from: raw samples while kept, then 5-minute, then hourly rollups."""
    if at >= raw_cutoff(now=now) + timedelta(seconds=WINDOW_HEARTBEATS * settings.TWIN_HEARTBEAT_SECONDS):
        return RAW
    if at >= rollup_cutoff(now=now, hourly=False):
        return FIVE_MINUTES
    return HOUR


def host_rows_at(*, at: datetime, now: datetime) -> list[tuple]:
    """Every host that existed at ``at``, with its measurements as of then: ``metrics.selectors.HOST_ROW`` tuples.

    The inventory (names, racks, positions) is today's: it keeps no history.
    Hosts created after ``at`` are left out unless samples of theirs had
    arrived by then.
    """
    level = history_level_at(at=at, now=now)
    found = _measured_at_raw(at=at) if level is RAW else _measured_at_rollups(at=at, level=level)
    sql, params = (
        Host.objects.order_by("hostname").values_list(*INVENTORY_COLUMNS, "created_at").query.sql_with_params()
    )
    rows = []
    for *inventory, created_at in rows_fetch(sql, list(params)):
        measured = found.get(inventory[0])
        if measured is not None:
            rows.append((*inventory, *measured))
        elif aware(created_at) <= at:  # type: ignore[operator]
            rows.append((*inventory, *_BLANK))
    return rows


def _measured_at_raw(*, at: datetime) -> dict[int, Measured]:
    """Each host's newest sample received by ``at`` (with the one before it, for the throughput) and last contact.

    1. One scan of the samples received in the few heartbeats before ``at``
       (the ``received_at`` index; the partitions are by stamp, so a range of
       stamps without a host would read whole days): for each host its newest
       sample by stamp, the stamp and counters of the one before, and its last
       arrival, in one row.
    2. Hosts that had reported by then with fewer than two samples in that
       window: their two newest received by ``at``, wherever they are.
    """
    window = timedelta(seconds=WINDOW_HEARTBEATS * settings.TWIN_HEARTBEAT_SECONDS)
    columns = ", ".join(_SAMPLE_COLUMNS)
    before = ", ".join(f"LEAD({name}) OVER w AS prev_{name}" for name in ("timestamp", *LINK_TRAFFIC))
    rows = rows_fetch(
        f"SELECT {columns}, prev_timestamp, {', '.join(f'prev_{n}' for n in LINK_TRAFFIC)}, seen, {iso_text('seen')} "
        f"FROM (SELECT {columns}, ROW_NUMBER() OVER w AS n, {before}, "
        "MAX(received_at) OVER (PARTITION BY host_id) AS seen "
        f"FROM {Sample._meta.db_table} WHERE received_at > %s AND received_at <= %s "
        "WINDOW w AS (PARTITION BY host_id ORDER BY timestamp DESC)) x WHERE n = 1",
        [db_datetime(at - window), db_datetime(at)],
    )
    found: dict[int, Measured] = {}
    partial: dict[int, tuple] = {}
    convert = aware if connection.vendor != "postgresql" else _same
    for row in rows:
        host_id, stamp = row[0], row[1]
        values = row[3 : 3 + _FIELDS]
        prev_stamp, prev_tx, prev_rx, seen, seen_iso = row[3 + _FIELDS :]
        if prev_stamp is None:
            partial[host_id] = row[: 3 + _FIELDS]
            continue
        throughput = link_throughput_gbps(
            sample_time=convert(stamp),
            tx=values[_TX],
            rx=values[_RX],
            prev_time=convert(prev_stamp),
            prev_tx=prev_tx,
            prev_rx=prev_rx,
        )
        found[host_id] = (convert(seen), *values, throughput, seen_iso)
    missing = [host_id for host_id in LatestMetrics.objects.values_list("host_id", flat=True) if host_id not in found]
    # A sample received by ``at`` is stamped at most the allowed skew after it.
    newest = at + timedelta(seconds=settings.TWIN_MAX_FUTURE_SKEW_SECONDS)
    by_host: dict[int, list[tuple]] = {host_id: [row] for host_id, row in partial.items()}
    for row in _newest_samples(host_ids=missing, newest=newest, at=at):
        if row not in by_host.setdefault(row[0], []):
            by_host[row[0]].append(row)
    for host_id, samples in by_host.items():
        found[host_id] = _measured_from_samples(samples)
    return found


def _same(value: Any) -> Any:
    return value


def _newest_samples(*, host_ids: list[int], newest: datetime, at: datetime) -> list[tuple]:
    """The two newest samples received by ``at`` of each of these hosts (one index probe each)."""
    if not host_ids:
        return []
    columns = ", ".join(f"s.{c}" for c in _SAMPLE_COLUMNS)
    where = "s.host_id = {host} AND s.timestamp <= %s AND s.received_at <= %s ORDER BY s.timestamp DESC LIMIT 2"
    table = Sample._meta.db_table
    if connection.vendor == "postgresql":
        return rows_fetch(
            f"SELECT {columns} FROM unnest(%s::bigint[]) AS h(id) CROSS JOIN LATERAL "
            f"(SELECT {columns} FROM {table} s WHERE {where.format(host='h.id')}) s",
            [host_ids, db_datetime(newest), db_datetime(at)],
        )
    rows = []
    for host_id in host_ids:
        rows += rows_fetch(
            f"SELECT {columns} FROM {table} s WHERE {where.format(host='%s')}",
            [host_id, db_datetime(newest), db_datetime(at)],
        )
    return rows


def _measured_from_samples(rows: list[tuple]) -> Measured:
    """A host's measurements from its newest samples (as ``LatestMetrics`` would have held them)."""
    rows = sorted(rows, key=lambda r: aware(r[1]), reverse=True)[:2]  # type: ignore[arg-type, return-value]
    newest = rows[0]
    values = newest[3:]
    throughput = None
    if len(rows) == 2:
        previous = rows[1][3:]
        throughput = link_throughput_gbps(
            sample_time=aware(newest[1]),
            tx=values[_TX],
            rx=values[_RX],
            prev_time=aware(rows[1][1]),
            prev_tx=previous[_TX],
            prev_rx=previous[_RX],
        )
    last_seen = max(aware(row[2]) for row in rows)  # type: ignore[type-var]
    return (last_seen, *values, throughput, None)


def _measured_at_rollups(*, at: datetime, level: Level) -> dict[int, Measured]:
    """Each host's newest bucket begun by ``at``: gauges averaged over it, counters at its end."""
    assert level.model is not None
    table = level.model._meta.db_table
    columns = ["host_id", "bucket", "first_at", "last_at"]
    for f in METRIC_FIELDS:
        columns.append(f"{f.name}_avg" if f.kind == Kind.GAUGE else f"{f.name}_last")
    for f in COUNTERS:
        columns += [f"{f.name}_increase", f"{f.name}_seconds"]
    listed = ", ".join(columns)
    rows = rows_fetch(
        f"SELECT {listed} FROM (SELECT {listed}, ROW_NUMBER() OVER (PARTITION BY host_id ORDER BY bucket DESC) AS n "
        f"FROM {table} WHERE bucket > %s AND bucket <= %s AND first_at <= %s) w WHERE n = 1",
        [db_datetime(at - ROLLUP_WINDOW[level.name]), db_datetime(at), db_datetime(at)],
    )
    by_host = {row[0]: row for row in rows}
    for host_id in LatestMetrics.objects.values_list("host_id", flat=True):
        if host_id in by_host:
            continue
        older = rows_fetch(
            f"SELECT {listed} FROM {table} WHERE host_id = %s AND bucket <= %s AND first_at <= %s "
            "ORDER BY bucket DESC LIMIT 1",
            [host_id, db_datetime(at), db_datetime(at)],
        )
        if older:
            by_host[host_id] = older[0]
    return {host_id: _measured_from_rollup(row, at=at) for host_id, row in by_host.items()}


def _measured_from_rollup(row: tuple, *, at: datetime) -> Measured:
    values = []
    for f, value in zip(METRIC_FIELDS, row[4 : 4 + _FIELDS], strict=True):
        values.append(round(value) if f.integer and f.kind == Kind.GAUGE and value is not None else value)
    rates = {}
    rest = row[4 + _FIELDS :]
    for i, f in enumerate(COUNTERS):
        rise, seconds = rest[2 * i], rest[2 * i + 1]
        rates[f.name] = rise / seconds if seconds else None
    traffic = [rates.get(name) for name in LINK_TRAFFIC]
    throughput = None if None in traffic else sum(traffic) * 8 / 1e9  # type: ignore[arg-type]
    return (min(aware(row[3]), at), *values, throughput, None)  # type: ignore[type-var]
