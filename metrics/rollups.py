"""Rollups: each host's samples summarised per 5 minutes and per hour, and the algebra series share.

A *unit* is a row that summarises some of a host's samples, in one shape
whatever it summarises (the rollup columns of ``metrics.fields``): a raw sample
is a unit of one; a 5-minute rollup is a unit of up to 30 at 10 s. Per metric:

- a gauge keeps its average, how many readings it averages, least and greatest;
- a counter keeps its first and last reading, the sum of its rises between
  consecutive readings and the seconds they took, and its least and greatest
  rate between two consecutive readings. A pair of readings where the counter
  went down (a reboot, a wrap) counts for nothing: no negative rate, no spike,
  exactly as the twin's link throughput (``metrics.rates``).

Units compose into coarser groups (``units_compose``): averages weighted by
their counts, least of the least, greatest of the greatest, rises and seconds
summed, plus the pair of readings *across* each boundary between consecutive
units, which the first and last readings (and ``first_at``, ``last_at``) give.
So every pair of consecutive samples counts exactly once at any resolution:
a series read from 5-minute rollups equals the same series read from raw
samples (tests/metrics/test_history_rollups.py), and an hour composed from
twelve 5-minute units equals the hour composed from its 360 samples.

A counter's average rate over a group is its rises over their seconds: the
bytes moved divided by the time they took, not an average of rates.

The rollup job (``rollups_update``) finds the buckets whose samples arrived
since its last run (by ``received_at``, so late and out-of-order samples are
included), recomputes those 5-minute buckets from the raw rows, then the hours
they fall in from the 5-minute rows; each is an upsert, so a rerun changes
nothing. Ingest is untouched: it writes raw rows only, as fast as before.

Two histories go through this one path (``History``): the hosts' registry
fields (``Sample`` into ``Rollup5m``/``Rollup1h``, keyed by host) and the
labelled series (``SeriesSample`` into ``SeriesRollup5m``/``SeriesRollup1h``,
keyed by series, whose one ``value`` column is rolled up as a gauge and as a
counter alike: a read takes the columns of the series' kind). Every builder
below takes the history it reads; the hosts' is the default.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection, models, transaction
from django.db.models import Min

from common.sql import db_datetime, epoch, epoch_seconds, float_type, floor_integer, from_epoch
from metrics.fields import METRIC_FIELDS, SERIES_VALUE_FIELDS, Kind, rollup_column_names
from metrics.models import (
    Rollup,
    Rollup1h,
    Rollup5m,
    RollupProgress,
    Sample,
    SeriesRollup1h,
    SeriesRollup5m,
    SeriesSample,
)


@dataclass(frozen=True)
class Level:
    """A resolution of the history: its name in the API, its bucket width, its table (None: raw samples)."""

    name: str
    seconds: int
    model: type[Rollup] | None


RAW = Level("raw", 1, None)
FIVE_MINUTES = Level("5m", 300, Rollup5m)
HOUR = Level("1h", 3600, Rollup1h)
ROLLUP_LEVELS = (FIVE_MINUTES, HOUR)

# Every metric's rollup columns, in registry order: the columns of a unit.
METRIC_COLUMNS: tuple[str, ...] = tuple(c for f in METRIC_FIELDS for c in rollup_column_names(f))
# A unit's columns: who, when (as stored, to order units), its first and last
# sample's times (as stored, and in seconds since the epoch: ``last_e`` is NULL
# for a raw sample, whose last is its first), how many samples, the metrics.
UNIT_COLUMNS = ("host_id", "t", "first_at", "last_at", "first_e", "last_e", "samples", *METRIC_COLUMNS)
# What ``units_compose`` returns, per host and group.
COMPOSED_COLUMNS = ("host_id", "grp", "samples", "first_at", "last_at", *METRIC_COLUMNS)

PROGRESS_NAME = "rollups"


@dataclass(frozen=True)
class History:
    """A raw history and its rollups: what the unit algebra reads and writes.

    ``key`` is the column a unit belongs to (a host, a series); ``fields`` the
    value columns with their kinds; ``rollups`` the 5-minute and hourly tables;
    ``progress`` the name of its ``RollupProgress`` row.
    """

    raw: type[models.Model]
    key: str
    fields: tuple
    rollups: dict[str, type[models.Model]]
    progress: str

    @property
    def columns(self) -> tuple[str, ...]:
        """Every value's rollup columns, in field order: the value columns of a unit."""
        return tuple(c for f in self.fields for c in rollup_column_names(f))

    def rollup_table(self, level: Level) -> str:
        return self.rollups[level.name]._meta.db_table


HOSTS = History(
    raw=Sample,
    key="host_id",
    fields=tuple(METRIC_FIELDS),
    rollups={FIVE_MINUTES.name: Rollup5m, HOUR.name: Rollup1h},
    progress=PROGRESS_NAME,
)
SERIES = History(
    raw=SeriesSample,
    key="series_id",
    fields=SERIES_VALUE_FIELDS,
    rollups={FIVE_MINUTES.name: SeriesRollup5m, HOUR.name: SeriesRollup1h},
    progress="series_rollups",
)
HISTORIES = (HOSTS, SERIES)


def composed_columns(history: History) -> tuple[str, ...]:
    """What ``units_compose`` returns for ``history``, per key and group."""
    return (history.key, "grp", "samples", "first_at", "last_at", *history.columns)


# Batches are stamped ``received_at`` when they arrive and commit a moment
# later; each run reads again this far back, so a batch that committed after
# the previous run looked is never missed. Recomputing a bucket twice changes nothing.
COMMIT_OVERLAP = timedelta(seconds=120)
# A run catching up (the first one, or after downtime) reads at most this much
# arrival time per step, and stops after its budget: the next run goes on.
CATCH_UP_SLICE = timedelta(hours=1)
RUN_BUDGET_SECONDS = 20.0
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --------------------------------------------------------------------------- units


def units_from_samples(*, where: str, join: str = "", history: History | None = None) -> str:
    """A SELECT of raw samples (alias ``s``) as units, in ``UNIT_COLUMNS`` order."""
    history = history or HOSTS
    real = float_type()
    columns = [
        f"s.{history.key}",
        "s.timestamp AS t",
        "s.timestamp AS first_at",
        "s.timestamp AS last_at",
        f"{epoch('s.timestamp')} AS first_e",
        f"CAST(NULL AS {real}) AS last_e",
        "1 AS samples",
    ]
    for f in history.fields:
        n = f.name
        if f.kind == Kind.GAUGE:
            columns += [
                f"CAST(s.{n} AS {real}) AS {n}_avg",
                f"CASE WHEN s.{n} IS NULL THEN 0 ELSE 1 END AS {n}_count",
                f"s.{n} AS {n}_min",
                f"s.{n} AS {n}_max",
            ]
        else:
            columns += [
                f"s.{n} AS {n}_first",
                f"s.{n} AS {n}_last",
                f"CAST(0 AS {real}) AS {n}_increase",
                f"CAST(0 AS {real}) AS {n}_seconds",
                f"CAST(NULL AS {real}) AS {n}_rate_min",
                f"CAST(NULL AS {real}) AS {n}_rate_max",
            ]
    return f"SELECT {', '.join(columns)} FROM {history.raw._meta.db_table} s {join} WHERE {where}"


def units_from_rollups(*, level: Level, where: str, join: str = "", history: History | None = None) -> str:
    """A SELECT of one level's rollups (alias ``r``) as units, in ``UNIT_COLUMNS`` order."""
    history = history or HOSTS
    columns = [
        f"r.{history.key}",
        "r.bucket AS t",
        "r.first_at",
        "r.last_at",
        f"{epoch('r.first_at')} AS first_e",
        f"{epoch('r.last_at')} AS last_e",
        "r.samples",
        *(f"r.{c}" for c in history.columns),
    ]
    return f"SELECT {', '.join(columns)} FROM {history.rollup_table(level)} r {join} WHERE {where}"


def units_compose(
    *,
    units: str,
    group_seconds: int,
    pairs_within_groups: bool,
    keep_ends: bool = True,
    history: History | None = None,
) -> str:
    """A SELECT that composes ``units`` into groups of ``group_seconds`` (``COMPOSED_COLUMNS``).

    1. Group each unit by its first sample's time: whole seconds since the
       epoch over the width (a rollup bucket lies in one group of any whole
       number of its widths).
    2. Pair each unit with the one before it, per host (within its group only
       when ``pairs_within_groups``: a rollup bucket keeps the pair across its
       start boundary out, as its first readings stand for it; a series counts
       it in the later group).
    3. A pair across units counts when both counter readings are known, the
       counter did not go down and time moved forward.
    4. Aggregate per host and group; ``keep_ends`` also keeps each group's
       first and last counter readings (for rollups; series need none).
    """
    history = history or HOSTS
    key = history.key
    real = float_type()
    window_partition = f"v.{key}, v.grp" if pairs_within_groups else f"v.{key}"
    lags = ["LAG(COALESCE(v.last_e, v.first_e)) OVER w AS prev_last_e"]
    ends = []
    pair_columns = []
    aggregates = [
        key,
        "grp",
        "SUM(samples) AS samples",
        "MIN(first_at) AS first_at",
        "MAX(last_at) AS last_at",
    ]
    for f in history.fields:
        n = f.name
        if f.kind == Kind.GAUGE:
            aggregates += [
                f"SUM({n}_avg * {n}_count) / NULLIF(SUM({n}_count), 0) AS {n}_avg",
                f"SUM({n}_count) AS {n}_count",
                f"MIN({n}_min) AS {n}_min",
                f"MAX({n}_max) AS {n}_max",
            ]
            continue
        lags.append(f"LAG(v.{n}_last) OVER w AS prev_{n}")
        if keep_ends:
            ends += [f"FIRST_VALUE(v.{n}_first) OVER g AS g_{n}_first", f"LAST_VALUE(v.{n}_last) OVER g AS g_{n}_last"]
        counts = f"x.prev_{n} IS NOT NULL AND x.{n}_first >= x.prev_{n} AND x.first_e > x.prev_last_e"
        pair_columns += [
            f"CASE WHEN {counts} THEN CAST(x.{n}_first - x.prev_{n} AS {real}) END AS b_{n}_rise",
            f"CASE WHEN {counts} THEN x.first_e - x.prev_last_e END AS b_{n}_seconds",
        ]
        rate = f"b_{n}_rise / b_{n}_seconds"
        aggregates += [
            f"MAX(g_{n}_first) AS {n}_first" if keep_ends else f"CAST(NULL AS BIGINT) AS {n}_first",
            f"MAX(g_{n}_last) AS {n}_last" if keep_ends else f"CAST(NULL AS BIGINT) AS {n}_last",
            f"SUM({n}_increase) + COALESCE(SUM(b_{n}_rise), 0) AS {n}_increase",
            f"SUM({n}_seconds) + COALESCE(SUM(b_{n}_seconds), 0) AS {n}_seconds",
            f"MIN(CASE WHEN b_{n}_rise IS NULL THEN {n}_rate_min "
            f"WHEN {n}_rate_min IS NULL OR {rate} < {n}_rate_min THEN {rate} ELSE {n}_rate_min END) AS {n}_rate_min",
            f"MAX(CASE WHEN b_{n}_rise IS NULL THEN {n}_rate_max "
            f"WHEN {n}_rate_max IS NULL OR {rate} > {n}_rate_max THEN {rate} ELSE {n}_rate_max END) AS {n}_rate_max",
        ]
    windows = f"w AS (PARTITION BY {window_partition} ORDER BY v.t)"
    if ends:
        whole_group = "ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING"
        windows += f", g AS (PARTITION BY v.{key}, v.grp ORDER BY v.t {whole_group})"
    grouped = f"SELECT u.*, {floor_integer('u.first_e')} / {int(group_seconds)} AS grp FROM ({units}) u"
    windowed = f"SELECT v.*, {', '.join(lags + ends)} FROM ({grouped}) v WINDOW {windows}"
    paired = f"SELECT x.*{''.join(', ' + c for c in pair_columns)} FROM ({windowed}) x"
    return f"SELECT {', '.join(aggregates)} FROM ({paired}) y GROUP BY {key}, grp"


# --------------------------------------------------------------------------- the job


def _touched_sql(level: Level, history: History) -> str:
    """(key, bucket start, bucket end) of ``level`` holding samples received in a window (3 parameters)."""
    width = level.seconds
    key = history.key
    raw = (
        f"SELECT DISTINCT {key}, {epoch_seconds('timestamp')} / {FIVE_MINUTES.seconds} AS k "
        f"FROM {history.raw._meta.db_table} WHERE received_at > %s AND received_at <= %s AND timestamp >= %s"
    )
    if level is not FIVE_MINUTES:
        raw = f"SELECT DISTINCT {key}, k * {FIVE_MINUTES.seconds} / {width} AS k FROM ({raw}) t5"
    return f"SELECT {key}, {from_epoch(f'k * {width}')} AS lo, {from_epoch(f'(k + 1) * {width}')} AS hi FROM ({raw}) t0"


def _rollups_upsert(*, level: Level, units: str, params: list, history: History) -> int:
    """Write the composed buckets of ``units`` into ``level``'s table, replacing what was there."""
    table = history.rollup_table(level)
    key = history.key
    columns = [key, "bucket", "samples", "first_at", "last_at", *history.columns]
    composed = units_compose(units=units, group_seconds=level.seconds, pairs_within_groups=True, history=history)
    select = ", ".join([key, from_epoch(f"grp * {level.seconds}"), "samples", "first_at", "last_at", *history.columns])
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns[2:])
    # "WHERE true" lets SQLite tell the SELECT from the upsert clause.
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {select} FROM ({composed}) c WHERE true "
        f"ON CONFLICT ({key}, bucket) DO UPDATE SET {updates}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def rollups_rebuild(
    *, received_after: datetime, received_until: datetime, stamped_from: datetime, history: History | None = None
) -> int:
    """Recompute every 5-minute and hourly bucket holding a sample received in (after, until].

    Samples stamped before ``stamped_from`` (the raw retention's cutoff) are
    left alone: their buckets' other samples may be gone, and the rollups
    hold what is left of them. Returns the 5-minute buckets written.
    """
    history = history or HOSTS
    key = history.key
    window = [db_datetime(received_after), db_datetime(received_until), db_datetime(stamped_from)]
    touched5 = _touched_sql(FIVE_MINUTES, history)
    raw = units_from_samples(
        join=f"JOIN ({touched5}) t ON s.{key} = t.{key} AND s.timestamp >= t.lo AND s.timestamp < t.hi",
        where="true",
        history=history,
    )
    written = _rollups_upsert(level=FIVE_MINUTES, units=raw, params=window, history=history)
    fives = units_from_rollups(
        level=FIVE_MINUTES,
        join=f"JOIN ({_touched_sql(HOUR, history)}) t ON r.{key} = t.{key} AND r.bucket >= t.lo AND r.bucket < t.hi",
        where="true",
        history=history,
    )
    _rollups_upsert(level=HOUR, units=fives, params=window, history=history)
    return written


def rollups_progress(history: History | None = None) -> datetime | None:
    """The arrival time up to which rollups include every sample (None before the first run)."""
    name = (history or HOSTS).progress
    return RollupProgress.objects.filter(name=name).values_list("received_until", flat=True).first()


def rollups_update(
    *,
    now: datetime,
    stamped_from: datetime,
    budget_seconds: float | None = RUN_BUDGET_SECONDS,
    history: History | None = None,
) -> str:
    """Bring the rollups up to the samples received by ``now``; a sentence for the job's last run.

    1. Start where the last run stopped, less ``COMMIT_OVERLAP`` (or at the
       first sample ever received); skip stretches in which nothing arrived.
    2. In slices of at most ``CATCH_UP_SLICE`` of arrival time, each in one
       transaction with the progress it makes: recompute the touched buckets.
    3. Stop when caught up or when the budget is spent (the next run goes on).
    """
    history = history or HOSTS
    started = time.perf_counter()
    cursor = rollups_progress(history) or EPOCH
    buckets = slices = 0
    while cursor < now:
        # The next arrival to read (an index probe): a quiet stretch is skipped at once.
        arrival = history.raw._default_manager.filter(received_at__gt=cursor - COMMIT_OVERLAP).aggregate(
            next=Min("received_at")
        )
        if arrival["next"] is None or arrival["next"] > now:
            cursor = now
            RollupProgress.objects.update_or_create(name=history.progress, defaults={"received_until": now})
            break
        cursor = max(cursor, arrival["next"] - timedelta(microseconds=1))
        until = min(now, cursor + CATCH_UP_SLICE)
        with transaction.atomic():
            buckets += rollups_rebuild(
                received_after=cursor - COMMIT_OVERLAP, received_until=until, stamped_from=stamped_from, history=history
            )
            RollupProgress.objects.update_or_create(name=history.progress, defaults={"received_until": until})
        cursor, slices = until, slices + 1
        if budget_seconds is not None and time.perf_counter() - started > budget_seconds:
            break
    behind = "" if cursor >= now else f"; {(now - cursor).total_seconds():.0f} s of arrivals left for the next run"
    return f"{buckets} five-minute bucket(s) written in {slices} slice(s){behind}"
