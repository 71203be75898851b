"""The history's benchmark: series, the twin at a past time and pruning, each figure beside its floor.

    .venv/bin/python -m bench.history [--quick] [--no-contrast]

Needs PostgreSQL (``BENCH_DATABASE_URL``, dropped and created anew, as for
``bench.run``). Generates its history in the database with ``generate_series``
(millions of rows in a minute or two), starts the twin (one daphne process,
signed agents, its background jobs off so each job runs when the benchmark
says) on a loopback port, and writes ``bench/history-results.md``.

1. Series: one host, 30 days at 10 s (259,200 raw samples), rolled up, read at
   about 1,000 points over HTTP. Floor: the rollup rows the answer is made of,
   grouped into the same buckets by a plain GROUP BY in this process.
2. The twin at a past time at 10,000 hosts (10 minutes of raw samples each),
   built and encoded in process, alternating with its floor: the live snapshot.
3. Pruning a day of raw samples of 1,000 hosts (8.64 million rows) while 32
   agents post single-sample signed batches: their p99 latency while the
   prune runs against the same agents' p99 just before it. With the contrast
   (default), the same day is then deleted in chunks (what SQLite does) for
   comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson
from django.core.management import call_command
from django.db import close_old_connections, connection
from django.db.models import F

import bench.django_setup  # noqa: F401  (first: a fresh database, Django set up)
from bench.fleet import fleet_seed
from bench.harness import ROOT, Agent, Server, daphne, pct, register, results_file_write, sample
from common.sql import rows_fetch
from hosts.models import Host, Link
from hosts.services import enrollment_key_create
from metrics import retention
from metrics.history import series_read
from metrics.models import Rollup5m
from metrics.retention import day_start, history_prune, partition_create, partition_name, raw_cutoff
from metrics.rollups import METRIC_COLUMNS, RAW, rollups_rebuild, rollups_update
from twin.services import status_transitions_record
from twin.snapshot import snapshot_build

results: list[dict[str, Any]] = []
notes: list[str] = []


def record(figure: str, measured: str, floor: str, ratio: str, target: str, met: bool | None) -> None:
    results.append(
        {"figure": figure, "measured": measured, "floor": floor, "ratio": ratio, "target": target, "met": met}
    )
    verdict = "-" if met is None else ("met" if met else "MISSED")
    print(f"{figure}: {measured} | floor {floor} | {ratio} | target {target} | {verdict}", flush=True)


def note(text: str) -> None:
    notes.append(text)
    print(f"  - {text}", flush=True)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds >= 0.01 else f"{seconds * 1000:.1f} ms"


def samples_generate(*, host_ids: list[int], start: datetime, end: datetime, table: str = "metrics_sample") -> int:
    """Insert 10-second samples of these hosts over [start, end) with ``generate_series``; return the rows.

    CPU follows a slow wave, memory and load stay put, counters grow about
    1 Gbit/s and reset with the uptime every 10 days (so rates meet resets).
    """
    sql = f"""
        INSERT INTO {table} (host_id, timestamp, received_at, cpu_load, memory_used_percent, load_average,
                             uptime_seconds, net_bytes_tx, net_bytes_rx)
        SELECT h, t, t + interval '200 milliseconds',
               50 + 40 * sin(extract(epoch from t) / 3600.0 + h), 30 + h %% 60, 1 + h %% 7,
               extract(epoch from t)::bigint %% 864000,
               (extract(epoch from t)::bigint %% 864000) * 125000000 + h,
               (extract(epoch from t)::bigint %% 864000) * 60000000 + h
        FROM unnest(%s::bigint[]) AS h,
             generate_series(%s::timestamptz, %s::timestamptz - interval '1 microsecond', interval '10 seconds') AS t
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [host_ids, start, end])
        return cursor.rowcount


def analyze() -> None:
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


# --------------------------------------------------------------------------- 1. series


async def figure_series(server: Server, rounds: int) -> None:
    host = Host.objects.create(hostname="series-01")
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    start = end - timedelta(days=30)
    t0 = time.perf_counter()
    rows = samples_generate(host_ids=[host.pk], start=start, end=end)
    generated = time.perf_counter() - t0
    t0 = time.perf_counter()
    rollups_update(now=datetime.now(UTC), stamped_from=start - timedelta(days=1), budget_seconds=None)
    rolled = time.perf_counter() - t0
    note(
        f"Series: {rows:,} raw samples generated in {generated:.1f} s; the rollup job folded them into "
        f"{Rollup5m.objects.filter(host=host).count():,} five-minute buckets in {rolled:.1f} s "
        f"({rows / rolled:,.0f} samples/s, a backfill in one-hour slices of arrival time)."
    )
    analyze()
    url = f"{server.url}/api/hosts/series-01/metrics"
    params = {"from": start.isoformat(), "to": end.isoformat()}
    now = datetime.now(UTC)

    # The floor: the same 8,640 rows grouped into the same buckets by a plain GROUP BY (each
    # column's own aggregate, no pairs of readings across rows), read the same way.
    plain = ", ".join(f"MAX({c})" for c in METRIC_COLUMNS)
    floor_sql = (
        f"SELECT FLOOR(date_part('epoch', bucket))::bigint / %s AS grp, SUM(samples), {plain} "
        f"FROM {Rollup5m._meta.db_table} WHERE host_id = %s AND bucket >= %s AND bucket < %s GROUP BY 1 ORDER BY 1"
    )

    def floor() -> None:
        rows_fetch(floor_sql, [body["stepSeconds"], host.pk, start, end])

    def in_process(level: Any = None) -> Any:
        keys = ("cpuLoad", "memoryUsedPercent", "loadAverage", "uptimeSeconds", "netBytesTx", "netBytesRx")
        return series_read(host_id=host.pk, start=start, end=end, step=None, keys=keys, now=now, level=level)

    http_times: list[float] = []
    health_times: list[float] = []
    body: dict[str, Any] = {}
    async with aiohttp.ClientSession() as http:
        for _ in range(3):  # warm up
            async with http.get(url, params=params) as response:
                body = await response.json()
                assert response.status == 200, body
        for _ in range(rounds):
            t0 = time.perf_counter()
            async with http.get(url, params=params) as response:
                body = await response.json()
            http_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            async with http.get(f"{server.url}/api/health") as response:
                await response.read()
            health_times.append(time.perf_counter() - t0)
    own, floors, raw = [], [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        in_process()
        own.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        floor()
        floors.append(time.perf_counter() - t0)
    for _ in range(3):
        t0 = time.perf_counter()
        in_process(RAW)
        raw.append(time.perf_counter() - t0)
    p50, own_p50, floor_p50 = pct(http_times, 0.5), pct(own, 0.5), pct(floors, 0.5)
    points = len(body["times"])
    record(
        "H1. Series, one host, 30 days at 10 s (259,200 raw samples)",
        f"over HTTP p50 {ms(p50)}, p99 {ms(pct(http_times, 0.99))}; {points} points of {body['stepSeconds']} s "
        f"from {body['resolution']} rollups; in process p50 {ms(own_p50)}",
        f"in process {ms(floor_p50)} (a plain GROUP BY of the same 8,640 five-minute rows into the same buckets); "
        f"GET /api/health over HTTP p50 {ms(pct(health_times, 0.5))}",
        f"{own_p50 / floor_p50:.1f}x in process",
        "p50 <= 50 ms over HTTP, from rollups",
        p50 <= 0.05 and body["resolution"] != "raw",
    )
    note(f"Series: the same 30 days composed from the raw samples instead: p50 {ms(statistics.median(raw))}.")


# --------------------------------------------------------------------------- 2. the twin at a past time


async def figure_state_at(server: Server, rounds: int, hosts: int) -> None:
    names = fleet_seed(hosts=hosts, prefix="node")
    # As if the fleet (and the core switch) had been there for a day, not created a moment ago.
    Host.objects.update(created_at=F("created_at") - timedelta(days=1))
    Link.objects.update(created_at=F("created_at") - timedelta(days=1))
    ids = list(Host.objects.filter(hostname__in=names).values_list("pk", flat=True))
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    rows = samples_generate(host_ids=ids, start=end - timedelta(minutes=10), end=end)
    analyze()
    at = end - timedelta(minutes=1)
    note(f"The twin at a past time: {rows:,} raw samples ({hosts:,} hosts, 10 minutes at 10 s).")
    live_doc = snapshot_build()
    past_doc = snapshot_build(at=at)
    assert len(past_doc["hosts"]) == len(live_doc["hosts"]), (len(past_doc["hosts"]), len(live_doc["hosts"]))
    assert sum(h["status"] == "online" for h in past_doc["hosts"]) >= hosts
    for _ in range(2):
        orjson.dumps(snapshot_build())
        orjson.dumps(snapshot_build(at=at))
    live, past = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        orjson.dumps(snapshot_build())
        live.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        orjson.dumps(snapshot_build(at=at))
        past.append(time.perf_counter() - t0)
    http_live, http_past = [], []
    async with aiohttp.ClientSession() as http:
        for _ in range(max(5, rounds // 2)):
            for url, into in (
                (f"{server.url}/api/twin/state", http_live),
                (f"{server.url}/api/twin/state?at={at.isoformat().replace('+00:00', 'Z')}", http_past),
            ):
                t0 = time.perf_counter()
                async with http.get(url) as response:
                    await response.read()
                    assert response.status == 200
                into.append(time.perf_counter() - t0)
    p50, floor_p50 = pct(past, 0.5), pct(live, 0.5)
    record(
        f"H2. The twin at a past time, {len(past_doc['hosts']):,} hosts",
        f"build+encode p50 {ms(p50)}, p99 {ms(pct(past, 0.99))}; over HTTP p50 {ms(pct(http_past, 0.5))}",
        f"live snapshot build+encode p50 {ms(floor_p50)}; over HTTP p50 {ms(pct(http_live, 0.5))}",
        f"{p50 / floor_p50:.1f}x",
        "<= 2x the live snapshot",
        p50 <= 2 * floor_p50,
    )

    # What the background jobs cost at this size (no floor: informative).
    # On a thread of its own, as the job runner does: it publishes its events from outside the event loop.
    def recorder_runs() -> tuple[float, list[float]]:
        t0 = time.perf_counter()
        status_transitions_record(now=datetime.now(UTC) - timedelta(seconds=2))
        first = time.perf_counter() - t0
        runs = []
        for _ in range(5):
            t0 = time.perf_counter()
            status_transitions_record(now=datetime.now(UTC))
            runs.append(time.perf_counter() - t0)
        connection.close()
        return first, runs

    first, runs = await asyncio.to_thread(recorder_runs)
    note(
        f"Status recorder at {len(past_doc['hosts']):,} hosts: {ms(statistics.median(runs))} a run "
        f"(once a second; the first run, which records every host, {ms(first)})."
    )
    minute = end - timedelta(minutes=1)
    t0 = time.perf_counter()
    rollups_rebuild(
        received_after=minute, received_until=end + timedelta(seconds=1), stamped_from=minute - timedelta(days=1)
    )
    note(
        f"Rollup job at {hosts:,} hosts: {ms(time.perf_counter() - t0)} to fold one minute of arrivals "
        f"({hosts * 6:,} samples) into the 5-minute and hourly rollups (it runs once a minute)."
    )


# --------------------------------------------------------------------------- 3. pruning while agents post


class Posting:
    """Agents posting single-sample signed batches back to back; each request's start and latency."""

    def __init__(self, server: Server, agents: list[Agent]) -> None:
        self.server = server
        self.agents = agents
        self.clock = {a.hostname: datetime.now(UTC) - timedelta(hours=1) for a in agents}
        self.requests: list[tuple[float, float]] = []
        self.stop = asyncio.Event()

    async def _agent(self, http: aiohttp.ClientSession, agent: Agent) -> None:
        while not self.stop.is_set():
            self.clock[agent.hostname] += timedelta(seconds=1)
            body, headers = agent.signed([sample(agent.hostname, self.clock[agent.hostname])])
            t0 = time.perf_counter()
            async with http.post(f"{self.server.url}/api/metrics/batch", data=body, headers=headers) as response:
                await response.read()
                assert response.status == 202, await response.text()
            self.requests.append((t0, time.perf_counter() - t0))

    async def run(self) -> None:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            await asyncio.gather(*(self._agent(http, a) for a in self.agents))

    def window(self, start: float, end: float) -> list[float]:
        """Latencies of the requests in flight at any moment of [start, end]."""
        return [lat for t0, lat in self.requests if t0 <= end and t0 + lat >= start]


def _in_thread(fn: Any) -> Any:
    """Run ``fn`` on a thread of its own with its own connection (as a job runner does)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["started"] = time.perf_counter()
            box["result"] = fn()
        finally:
            box["ended"] = time.perf_counter()
            close_old_connections()
            connection.close()

    thread = threading.Thread(target=target)
    thread.start()
    return thread, box


async def figure_prune(server: Server, key: str, hosts: int, baseline_seconds: float, contrast: bool) -> None:
    names = fleet_seed(hosts=hosts, prefix="day")
    ids = list(Host.objects.filter(hostname__in=names).values_list("pk", flat=True))
    now = datetime.now(UTC)
    day = (raw_cutoff(now=now) - timedelta(days=1)).date()
    start = day_start(datetime.combine(day, datetime.min.time(), tzinfo=UTC))

    def load_day() -> tuple[int, float]:
        partition_create(day=day)
        t0 = time.perf_counter()
        rows = samples_generate(host_ids=ids, start=start, end=start + timedelta(days=1), table=partition_name(day))
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {partition_name(day)}")
            cursor.execute("CHECKPOINT")
        return rows, time.perf_counter() - t0

    rows, took = load_day()
    note(
        f"Pruning: a day of raw samples of {hosts:,} hosts, {rows:,} rows in its partition, generated in {took:.0f} s."
    )
    async with aiohttp.ClientSession() as http:
        agents = [await register(http, server.url, key, f"prune-agent-{i:02d}") for i in range(32)]
    posting = Posting(server, agents)
    task = asyncio.create_task(posting.run())
    await asyncio.sleep(2)  # warm up
    base_from = time.perf_counter()
    await asyncio.sleep(baseline_seconds)
    base_to = time.perf_counter()
    thread, box = _in_thread(lambda: history_prune(now=datetime.now(UTC)))
    while thread.is_alive():
        await asyncio.sleep(0.05)
    await asyncio.sleep(1)
    after_to = time.perf_counter()
    posting.stop.set()
    await task
    report = box["result"]
    assert partition_name(day) in report.partitions_dropped, report
    baseline = [lat for t0, lat in posting.requests if base_from <= t0 < base_to]
    during = posting.window(box["started"], box["ended"])
    around = [lat for t0, lat in posting.requests if box["started"] - 0.5 <= t0 < after_to]
    p99_base = pct(baseline, 0.99)
    p99_during = pct(during or around, 0.99)
    record(
        f"H3. Pruning a day of raw samples, {hosts:,} hosts ({rows / 1e6:.2f} M rows), 32 agents posting",
        f"prune took {ms(box['ended'] - box['started'])} (the day's partition dropped); ingest p99 while it ran "
        f"{ms(p99_during)} ({len(during)} requests), max {ms(max(during or around))}; p99 from its start to 1 s "
        f"after {ms(pct(around, 0.99))}",
        f"ingest p99 {ms(p99_base)} over the {baseline_seconds:.0f} s before ({len(baseline)} requests)",
        f"{p99_during / p99_base:.1f}x",
        "p99 during <= 2x without",
        p99_during <= 2 * p99_base,
    )
    if not contrast:
        return
    # The same day deleted in chunks (SQLite's way), for comparison: the partition loaded again, detached
    # from the pruning's reach so only the chunked delete touches it.
    rows, took = load_day()
    posting = Posting(server, agents)
    task = asyncio.create_task(posting.run())
    await asyncio.sleep(2)
    base_from = time.perf_counter()
    await asyncio.sleep(baseline_seconds)
    base_to = time.perf_counter()
    deleted = {"rows": 0}

    def chunked() -> int:
        table, cutoff = partition_name(day), start + timedelta(days=1)
        statement = (
            f"DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} "
            f"WHERE timestamp < %s LIMIT {retention.DELETE_CHUNK}))"
        )
        while True:
            with connection.cursor() as cursor:
                cursor.execute(statement, [cutoff])
                deleted["rows"] += cursor.rowcount
                if cursor.rowcount < retention.DELETE_CHUNK:
                    return deleted["rows"]

    thread, box = _in_thread(chunked)
    while thread.is_alive():
        await asyncio.sleep(0.05)
    posting.stop.set()
    await task
    baseline = [lat for t0, lat in posting.requests if base_from <= t0 < base_to]
    during = posting.window(box["started"], box["ended"])
    rate = deleted["rows"] / (box["ended"] - box["started"])
    note(
        f"Contrast: the same day deleted in chunks of {retention.DELETE_CHUNK:,} rows (SQLite's way) instead of "
        f"dropped took {box['ended'] - box['started']:.1f} s ({rate:,.0f} rows/s) and leaves the table's space to "
        f"vacuum; ingest p99 meanwhile {ms(pct(during, 0.99))} ({len(during)} requests) against "
        f"{ms(pct(baseline, 0.99))} before ({pct(during, 0.99) / pct(baseline, 0.99):.1f}x)."
    )
    history_prune(now=datetime.now(UTC))


# --------------------------------------------------------------------------- main


def results_write(started: datetime, quick: bool, load: tuple[float, ...]) -> None:
    lines = [
        "# History benchmark results",
        "",
        f"Run {started:%Y-%m-%d %H:%M} UTC by `python -m bench.history{' --quick' if quick else ''}` on "
        f"{platform.node()}: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, Python "
        f"{platform.python_version()}, PostgreSQL {connection.cursor().connection.info.server_version // 10000}, "
        "one daphne process (background jobs off: the benchmark runs each job when it measures it), "
        "clients on the same machine (and other people's work: load averages "
        f"{', '.join(f'{x:.1f}' for x in load)} when it started, "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} when it ended).",
    ]
    results_file_write(
        ROOT / "bench" / "history-results.md",
        header=lines,
        results=results,
        notes=notes,
        analysis=ROOT / "bench" / "history-analysis.md",
    )


async def main(quick: bool, contrast: bool) -> None:
    started, load = datetime.now(UTC), os.getloadavg()
    (ROOT / "var").mkdir(exist_ok=True)
    call_command("migrate", verbosity=0)
    _, key = enrollment_key_create(name="bench")
    env = {
        "TWIN_AGENT_AUTH": "signed",
        "TWIN_PUBLIC_READ": "true",
        "DEBUG": "false",
        "TWIN_JOBS_ENABLED": "false",
        "TWIN_STALE_AFTER_SECONDS": "600",
        "TWIN_OFFLINE_AFTER_SECONDS": "1800",
        "TWIN_INGEST_RATE_PER_MINUTE": "100000",
    }
    with daphne("twinsite.asgi:application", **env) as server:
        await figure_series(server, rounds=11 if quick else 31)
        await figure_state_at(server, rounds=5 if quick else 11, hosts=1000 if quick else 10_000)
        await figure_prune(server, key, hosts=100 if quick else 1000, baseline_seconds=5.0, contrast=contrast)
    results_write(started, quick, load)
    print(f"\nwrote {ROOT / 'bench' / 'history-results.md'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller fleets and fewer rounds, to check the script")
    parser.add_argument("--no-contrast", action="store_true", help="skip the chunked-delete contrast of figure 3")
    args = parser.parse_args()
    asyncio.run(main(args.quick, not args.no_contrast))
