"""The twin's benchmark: every figure measured beside its floor, in one run.

    make bench            # or: .venv/bin/python -m bench.run [--quick]

Needs PostgreSQL (``BENCH_DATABASE_URL``, default the local server's
``twin_bench`` database, dropped and created anew). Starts daphne on loopback
ports, sends only to 127.0.0.1, stops everything it started, and writes
``bench/results.md``. See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

import bench.django_setup  # noqa: F401  (first: a fresh database, Django set up)
from bench import live_shapes
from bench.fleet import fleet_seed
from bench.fleet_shapes import fleet_shapes
from bench.harness import (
    ROOT,
    Agent,
    RawSocketIOClient,
    Server,
    connect_clients,
    daphne,
    pct,
    register,
    results_file_write,
    run_for,
    sample,
)
from hosts.models import Host
from hosts.services import enrollment_key_create
from metrics.fields import FIELD_NAMES
from metrics.models import LatestMetrics, Sample
from metrics.selectors import host_rows
from metrics.statements import samples_insert
from twin.snapshot import snapshot_build

# --------------------------------------------------------------------------- figures

results: list[dict[str, Any]] = []
notes: list[str] = []


def record(figure: str, measured: str, floor: str, ratio: str, target: str, met: bool | None) -> None:
    results.append(
        {"figure": figure, "measured": measured, "floor": floor, "ratio": ratio, "target": target, "met": met}
    )
    verdict = "-" if met is None else ("met" if met else "MISSED")
    print(f"{figure}: {measured} | floor {floor} | {ratio} | target {target} | {verdict}")


# Figures 1 and 2 alternate measurement and floor this many times: on a shared
# two-core machine one pair moves by several points from run to run.
ROUNDS = 3


def rounds_summary(ratios: list[float]) -> str:
    return f"{statistics.median(ratios):.0%} (rounds: {', '.join(f'{r:.0%}' for r in ratios)})"


def _floor_metrics(i: int) -> list[object]:
    """A floor row's values of the registry's fields: those ``bench.harness.sample`` sends, None for the rest."""
    values = {
        "cpu_load": 42.5,
        "memory_used_percent": 63.2,
        "load_average": 1.72,
        "uptime_seconds": 7200 + i,
        "net_bytes_tx": i * 10**6,
        "net_bytes_rx": i * 2**21,
    }
    return [values.get(name) for name in FIELD_NAMES]


async def figure_ingest(server: Server, agents: list[Agent], batches: int, rounds: int) -> None:
    """1. 500-sample signed batches from 8 concurrent senders vs psycopg COPY of the same rows."""
    start = datetime.now(UTC) - timedelta(days=2)
    per_batch = 500
    senders = Sample.objects.filter(host__hostname__in=[a.hostname for a in agents])
    before = senders.count()

    def signed_batches(agent: Agent, offset: int, count: int) -> list[tuple[bytes, dict[str, str]]]:
        # Built and signed before the clock starts, as the floor's rows are.
        return [
            agent.signed(
                [
                    sample(agent.hostname, start + timedelta(seconds=(offset + b) * per_batch + i), i=i)
                    for i in range(per_batch)
                ]
            )
            for b in range(count)
        ]

    async def sender(http: aiohttp.ClientSession, batches: list[tuple[bytes, dict[str, str]]]) -> None:
        for body, headers in batches:
            async with http.post(f"{server.url}/api/metrics/batch", data=body, headers=headers) as response:
                result = await response.json()
                assert response.status == 202 and result["accepted"] == per_batch, result

    # Floor: the same rows, COPY from one Python process, one transaction per 500 rows.
    floor_host = Host.objects.create(hostname="bench-copy-floor")
    received = datetime.now(UTC)

    def copy_floor(first: int, count: int) -> float:
        rows = [
            (floor_host.pk, start + timedelta(seconds=i), received, *_floor_metrics(i))
            for i in range(first, first + count)
        ]
        t0 = time.perf_counter()
        for chunk in range(0, len(rows), per_batch):
            samples_insert(rows[chunk : chunk + per_batch])
        return len(rows) / (time.perf_counter() - t0)

    rates: list[float] = []
    floors: list[float] = []
    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(sender(http, signed_batches(a, 0, 2)) for a in agents))  # warm up
        for r in range(rounds):
            prepared = [signed_batches(a, 2 + r * batches, batches) for a in agents]
            t0 = time.perf_counter()
            await asyncio.gather(*(sender(http, own) for own in prepared))
            rates.append(len(agents) * batches * per_batch / (time.perf_counter() - t0))
            floors.append(copy_floor(r * len(agents) * batches * per_batch, len(agents) * batches * per_batch))
    stored = senders.count() - before
    expected = len(agents) * (2 + rounds * batches) * per_batch
    assert stored == expected, f"stored {stored}, expected {expected}: samples were lost"
    ratios = [rate / floor for rate, floor in zip(rates, floors, strict=True)]
    record(
        "1. Ingest, 500-sample signed batches, 8 senders",
        f"{statistics.median(rates):,.0f} samples/s ({rounds} rounds of {len(agents) * batches} batches, none lost)",
        f"{statistics.median(floors):,.0f} rows/s (COPY, 500 rows a transaction)",
        rounds_summary(ratios),
        ">= 50%",
        statistics.median(ratios) >= 0.5,
    )


async def figure_small_batches(server: Server, agents: list[Agent], seconds: float, rounds: int) -> None:
    """2. Single-sample signed batches from 64 senders vs a trivial endpoint in the same app."""
    latencies: list[float] = []
    counter = {"n": 0}
    clock = {agent.hostname: datetime.now(UTC) - timedelta(days=1) for agent in agents}

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

        async def post_one(worker: int) -> None:
            agent = agents[worker]
            clock[agent.hostname] += timedelta(seconds=1)
            body, headers = agent.signed([sample(agent.hostname, clock[agent.hostname])])
            t0 = time.perf_counter()
            async with http.post(f"{server.url}/api/metrics/batch", data=body, headers=headers) as response:
                await response.read()
                assert response.status == 202, await response.text()
            latencies.append(time.perf_counter() - t0)
            counter["n"] += 1

        async def get_health(worker: int) -> None:
            t0 = time.perf_counter()
            async with http.get(f"{server.url}/api/health") as response:
                await response.read()
            latencies.append(time.perf_counter() - t0)
            counter["n"] += 1

        async def measure(job: Callable[[int], Awaitable[None]]) -> tuple[float, float]:
            latencies.clear()
            counter["n"] = 0
            await run_for(seconds, len(agents), job)
            return counter["n"] / seconds, pct(latencies, 0.99)

        await run_for(1.0, len(agents), post_one)  # warm up
        pairs = [(await measure(post_one), await measure(get_health)) for _ in range(rounds)]
    ratios = [ingest[0] / floor[0] for ingest, floor in pairs]
    ingest_rps = statistics.median(ingest[0] for ingest, _ in pairs)
    ingest_p99 = statistics.median(ingest[1] for ingest, _ in pairs)
    floor_rps = statistics.median(floor[0] for _, floor in pairs)
    floor_p99 = statistics.median(floor[1] for _, floor in pairs)
    record(
        "2. Small batches, 1 sample, 64 senders",
        f"{ingest_rps:,.0f} req/s, p99 {ingest_p99 * 1000:.0f} ms ({rounds} rounds of {seconds:g} s)",
        f"{floor_rps:,.0f} req/s, p99 {floor_p99 * 1000:.0f} ms (GET /api/health)",
        rounds_summary(ratios),
        ">= 50%",
        statistics.median(ratios) >= 0.5,
    )


def database_settle() -> None:
    """Let PostgreSQL finish the ingest figures' writing before latency is measured.

    Hundreds of thousands of fresh rows leave a checkpoint and autovacuum to
    come; whichever of the twin or its floor ran into them would be penalised.
    """
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {Sample._meta.db_table}")
        cursor.execute("CHECKPOINT")


def snapshot_queries() -> int:
    with CaptureQueriesContext(connection) as ctx:
        snapshot_build()
    return len(ctx.captured_queries)


async def figure_snapshot(server: Server, queries_small: int, small_hosts: int) -> None:
    """3. GET /api/twin/state at 10,000 hosts vs one SELECT of the rows plus orjson.dumps."""
    hosts = Host.objects.count()
    queries_large = snapshot_queries()
    document = snapshot_build()

    def floor() -> None:
        host_rows()
        with connection.cursor() as cursor:
            cursor.execute("SELECT source_id, target_id, capacity_gbps FROM hosts_link")
            cursor.fetchall()
        orjson.dumps(document)

    for _ in range(3):
        snapshot_build()
        floor()
    # Build and floor alternate, so both meet the same state of the machine.
    server_times: list[float] = []
    floor_times: list[float] = []
    for _ in range(21):
        t0 = time.perf_counter()
        orjson.dumps(snapshot_build())
        server_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        floor()
        floor_times.append(time.perf_counter() - t0)
    http_times: list[float] = []
    async with aiohttp.ClientSession() as http:
        for _ in range(11):
            t0 = time.perf_counter()
            async with http.get(f"{server.url}/api/twin/state") as response:
                body = await response.read()
            http_times.append(time.perf_counter() - t0)
    p50, p99, floor_p50 = pct(server_times, 0.5), pct(server_times, 0.99), pct(floor_times, 0.5)
    record(
        f"3. Snapshot, {hosts:,} hosts and {len(document['links']):,} links",
        f"build+encode p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms; over HTTP p50 "
        f"{pct(http_times, 0.5) * 1000:.0f} ms; {len(body) / 1e6:.1f} MB; {queries_large} queries "
        f"({queries_small} at {small_hosts} hosts)",
        f"{floor_p50 * 1000:.0f} ms (the SELECTs + orjson.dumps)",
        f"{p50 / floor_p50:.1f}x",
        "p50 <= 50 ms, <= 2x floor, same query count",
        p50 <= 0.05 and p50 <= 2 * floor_p50 and queries_small == queries_large,
    )


async def push_latencies(
    clients: list[RawSocketIOClient], probes: int, gap: float, fire: Callable[[str], Awaitable[None]]
) -> tuple[list[float], int]:
    latencies: list[float] = []
    missing = 0
    for n in range(probes):
        marker = orjson.dumps(round(11 + n / 100 + random.random() / 1e3, 7)).decode()
        for c in clients:
            c.watch[marker] = 0.0
        t0 = time.perf_counter()
        await fire(marker)
        await asyncio.sleep(gap)
        for c in clients:
            seen = c.watch.pop(marker)
            if seen:
                latencies.append(seen - t0)
            else:
                missing += 1
    return latencies, missing


# Delivery jitter allowed when pushes are timed by their first delivery (figure 4b).
WINDOW_JITTER = 0.05


async def figure_push(server: Server, bare: Server, probe: Agent, clients_count: int, probes: int) -> None:
    """4. 200 websocket clients at 1,000 hosts: latency from a batch's 202 to its twin-state."""
    hosts = Host.objects.count()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        clients = await connect_clients(http, server.url, clients_count)
        await asyncio.sleep(2)

        async def fire_twin(marker: str) -> None:
            body, headers = probe.signed([sample(probe.hostname, datetime.now(UTC), cpu=float(marker))])
            async with http.post(f"{server.url}/api/metrics/batch", data=body, headers=headers) as response:
                assert response.status == 202, await response.text()

        # One push per probe: probes are spaced beyond the coalescing gap.
        latencies, missing = await push_latencies(clients, probes, 1.2, fire_twin)

        # Flood: 8 senders as fast as they can for 6 s; count pushes per second at each client.
        for c in clients:
            c.state_times.clear()
            c.generated.clear()
        flood_agents = [probe]

        async def flood(worker: int) -> None:
            body, headers = flood_agents[0].signed([sample(probe.hostname, datetime.now(UTC), cpu=random.random())])
            async with http.post(f"{server.url}/api/metrics/batch", data=body, headers=headers) as response:
                await response.read()

        await run_for(6.0, 8, flood)
        await asyncio.sleep(1.5)
        # Pushes in any one-second window, timed by each push's first delivery (the earliest
        # client to get that state): the limit is on when the server sends. Not by generatedAt:
        # a state built between two full-state slots is sent at the next slot, later than it was
        # built (twin/live/feed.py). Not by each client's arrival either: that adds each
        # delivery's own jitter. WINDOW_JITTER allows for the first delivery's.
        first_delivery: dict[float, float] = {}
        for c in clients:
            for generated, arrived in zip(c.generated, c.state_times, strict=False):
                first_delivery[generated] = min(arrived, first_delivery.get(generated, arrived))
        sends = sorted(first_delivery.values())
        windows = [max((sum(1 for u in sends if t <= u < t + 1.0 - WINDOW_JITTER) for t in sends), default=0)]
        received = [len(c.state_times) for c in clients]
        rss = server.rss_mb()
        for c in clients:
            await c.close()

        document = await (await http.get(f"{server.url}/api/twin/state")).read()
        bare_clients = await connect_clients(http, bare.url, clients_count)
        await asyncio.sleep(1)
        payload = orjson.loads(document)

        async def fire_bare(marker: str) -> None:
            payload["generatedAt"] = marker
            async with http.post(f"{bare.url}/broadcast", data=orjson.dumps(payload)) as response:
                assert response.status == 200

        floor, floor_missing = await push_latencies(bare_clients, probes, 1.2, fire_bare)
        for c in bare_clients:
            await c.close()
    p50, p99, floor_p50, floor_p99 = (
        pct(latencies, 0.5),
        pct(latencies, 0.99),
        pct(floor, 0.5),
        pct(floor, 0.99),
    )
    record(
        f"4. Live push, {clients_count} websocket clients, {hosts:,} hosts ({len(document) / 1e3:.0f} kB)",
        f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms ({len(latencies)} deliveries, {missing} missed)",
        f"p50 {floor_p50 * 1000:.0f} ms, p99 {floor_p99 * 1000:.0f} ms (bare python-socketio, {floor_missing} missed)",
        f"{p99 / floor_p99:.1f}x at p99",
        "p99 <= 250 ms",
        p99 <= 0.25 and missing == 0,
    )
    limit = float(os.environ.get("TWIN_PUSH_MAX_PER_SECOND", "2"))
    record(
        "4b. Push rate under a flood (8 senders, 6 s)",
        f"at most {max(windows)} pushes in any 1 s window; every client got {min(received)}-{max(received)}",
        f"{limit:g} per second configured",
        "-",
        "never above the limit, no client starved",
        max(windows) <= limit and min(received) >= max(received) - 1 and min(received) > 0,
    )
    notes.append(f"Server RSS with {clients_count} clients at {hosts:,} hosts after the flood: {rss:.0f} MB.")


async def figure_memory_and_delta(server: Server, poller: Agent, clients_count: int, seconds: float) -> None:
    """5 and 6. Peak RSS at 10,000 hosts with 200 clients; bytes per client per second, full vs delta."""
    hosts = list(Host.objects.filter(hostname__startswith="node-").values_list("hostname", flat=True))
    # The peak of this figure alone, not of the snapshots measured before it.
    server.peak_rss_reset()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        # One client takes full states, the others deltas: 10,000-host full
        # states to 200 clients would be a gigabyte a push, which is what the
        # delta mode is for. Every client still gets full states at connect.
        full = await connect_clients(http, server.url, 1)
        delta = await connect_clients(http, server.url, clients_count - 1, delta=True)
        # Measure from when every client holds its first full state.
        settle = time.monotonic() + 180
        while any(c.states == 0 for c in full + delta) and time.monotonic() < settle:
            await asyncio.sleep(0.5)
        connected_peak = server.peak_rss_mb()
        for c in full + delta:
            c.bytes = c.delta_bytes = c.deltas = c.states = 0
        t0 = time.perf_counter()

        async def steady(worker: int) -> None:
            # 100 hosts change each second, a tenth of the fleet every 10 s.
            now = datetime.now(UTC)
            chosen = random.sample(hosts, 100)
            body, headers = poller.signed([sample(h, now, cpu=random.uniform(0, 100)) for h in chosen])
            async with http.post(f"{server.url}/api/metrics/batch", data=body, headers=headers) as response:
                assert response.status == 202, await response.text()
            await asyncio.sleep(max(0.0, 1.0 - (time.perf_counter() - t0) % 1.0))

        await run_for(seconds, 1, steady)
        elapsed = time.perf_counter() - t0
        full_rate = statistics.mean(c.bytes for c in full) / elapsed
        delta_rate = statistics.mean(c.bytes for c in delta) / elapsed
        # What the delta stream itself costs, without starting states still arriving.
        delta_only_rate = statistics.mean(c.delta_bytes for c in delta) / elapsed
        deltas_each = statistics.mean(c.deltas for c in delta)
        notes.append(
            f"Figure 6: the full client got {full[0].states} states, each delta client {deltas_each:.1f} deltas."
        )
        peak = server.peak_rss_mb()

        # Not steady state, told apart: one change touching every host (here
        # every host's last contact moves) is a 5 MB delta to every delta client at once.
        server.peak_rss_reset()
        before = [c.deltas for c in delta]
        LatestMetrics.objects.update(last_seen=datetime.now(UTC))
        deadline = time.monotonic() + 60
        while any(c.deltas == b for c, b in zip(delta, before, strict=True)) and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        await asyncio.sleep(2)
        notes.append(
            f"Figure 5: peak {connected_peak:.0f} MB once all {clients_count} clients held their starting state; "
            f"a change touching all {len(hosts):,} hosts (a resync signal to {clients_count - 1} clients that do "
            f"not resync; figure 9 has clients that do) peaked at {server.peak_rss_mb():.0f} MB."
        )
        for c in full + delta:
            await c.close()
    record(
        f"5. Server peak RSS, {len(hosts):,} hosts, {clients_count} clients connected",
        f"{peak:.0f} MB (connecting, then {seconds:g} s of 100 changed hosts a second)",
        "-",
        "-",
        "<= 300 MB",
        peak <= 300,
    )
    record(
        f"6. Bytes per client per second, {len(hosts):,} hosts, 100 hosts changing a second",
        f"delta mode {delta_only_rate / 1e3:,.1f} kB/s of deltas ({delta_rate / 1e3:,.1f} kB/s with any full state)",
        f"full mode {full_rate / 1e6:,.2f} MB/s",
        f"{delta_only_rate / full_rate:.1%} of full" if full_rate else "no full state arrived",
        "(measure)",
        None,
    )


class RssWatch:
    """Samples the server's RSS twice a second and keeps the peak of each phase."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.phase = "start"
        self.peaks: dict[str, float] = {}
        self._task: asyncio.Task | None = None

    async def _run(self) -> None:
        while True:
            rss = self.server.rss_mb()
            self.peaks[self.phase] = max(self.peaks.get(self.phase, 0.0), rss)
            await asyncio.sleep(0.5)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    def summary(self) -> str:
        return ", ".join(f"{phase} {peak:.0f} MB" for phase, peak in self.peaks.items())


class PhaseProfiler:
    """With ``--profile``: py-spy samples the twin's server during each phase, into var/profile-<phase>.txt.

    ``--gil`` keeps only the threads holding the GIL, which is where a
    one-process server's CPU goes; the raw (collapsed stack) format reads with
    any flame graph tool or a text editor.
    """

    def __init__(self, server: Server, enabled: bool) -> None:
        self.server = server
        self.enabled = enabled
        self._spy: subprocess.Popen | None = None

    def enter(self, phase: str) -> None:
        self.stop()
        if self.enabled:
            output = ROOT / "var" / f"profile-{phase.replace(' ', '-').replace(',', '')}.txt"
            # The venv's own, when the venv is not activated.
            search = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
            spy = shutil.which("py-spy", path=search) or "py-spy"
            sampling = ["record", "--gil", "--nonblocking", "--rate", "97", "--format", "raw"]
            self._spy = subprocess.Popen(
                [spy, *sampling, "--output", str(output), "--pid", str(self.server.process.pid)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

    def stop(self) -> None:
        if self._spy is not None:
            self._spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            self._spy.wait(timeout=30)
            self._spy = None


# --------------------------------------------------------------------------- main


def results_write(started: datetime, quick: bool) -> None:
    lines = [
        "# Benchmark results",
        "",
        f"Run {started:%Y-%m-%d %H:%M} UTC by `python -m bench.run{' --quick' if quick else ''}` on {platform.node()}: "
        f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
        f"PostgreSQL {connection.cursor().connection.info.server_version // 10000}, one daphne process, "
        "in-memory channel layer, clients on the same machine.",
    ]
    results_file_write(
        ROOT / "bench" / "results.md",
        header=lines,
        results=results,
        notes=notes,
        analysis=ROOT / "bench" / "analysis.md",
    )


async def main(quick: bool, profile: bool) -> None:
    started = datetime.now(UTC)
    (ROOT / "var").mkdir(exist_ok=True)
    call_command("migrate", verbosity=0)
    _, key = enrollment_key_create(name="bench")
    # Seeded fleets are seen once; with the default 30 s threshold every seeded
    # host would turn stale in the middle of a figure, a change of the whole
    # fleet at once. Figure 5 measures such a change on purpose, apart.
    thresholds = {"TWIN_STALE_AFTER_SECONDS": "600", "TWIN_OFFLINE_AFTER_SECONDS": "1800"}
    env = {"TWIN_AGENT_AUTH": "signed", "TWIN_PUBLIC_READ": "true", "DEBUG": "false", **thresholds}
    with daphne("twinsite.asgi:application", **env) as server, daphne("bench.bare_socketio:application") as bare:
        async with aiohttp.ClientSession() as http:
            senders = [await register(http, server.url, key, f"bench-sender-{i}") for i in range(8)]
            small = [await register(http, server.url, key, f"bench-small-{i:02d}") for i in range(64)]
            probe = await register(http, server.url, key, "bench-probe")
            # Figure 7's own probe: figure 4's flood leaves "bench-probe" at its ingest rate limit.
            delta_probe = await register(http, server.url, key, "bench-probe-delta")
            poller = await register(http, server.url, key, "bench-poller")
        rss = RssWatch(server)
        rss.start()
        profiler = PhaseProfiler(server, enabled=profile)
        rss.phase = "ingest"
        profiler.enter(rss.phase)
        await figure_ingest(server, senders, batches=5 if quick else 25, rounds=1 if quick else ROUNDS)
        rss.phase = "small batches"
        profiler.enter(rss.phase)
        await figure_small_batches(server, small, seconds=3 if quick else 6, rounds=1 if quick else ROUNDS)
        small_hosts, queries_small = Host.objects.count(), snapshot_queries()
        fleet_seed(hosts=1000, prefix="k")
        database_settle()
        rss.phase = "push at 1,000 hosts"
        profiler.enter(rss.phase)
        await figure_push(server, bare, probe, clients_count=50 if quick else 200, probes=5 if quick else 15)
        await live_shapes.figure_delta_latency(
            record, server, bare, delta_probe, senders[0], clients_count=50 if quick else 200, runs=1 if quick else 3
        )
        fleet_seed(hosts=10_000, prefix="node")
        Host.objects.get(hostname="bench-poller").reports_for.add(*Host.objects.filter(hostname__startswith="node-"))
        Host.objects.filter(hostname__startswith="k-").delete()
        rss.phase = "snapshot at 10,000"
        profiler.enter(rss.phase)
        await figure_snapshot(server, queries_small, small_hosts)
        live_shapes.figure_snapshot_rounds(record, rounds=2 if quick else 5)
        rss.phase = "clients at 10,000"
        profiler.enter(rss.phase)
        await figure_memory_and_delta(server, poller, clients_count=50 if quick else 200, seconds=5 if quick else 15)
        await live_shapes.figure_everything_changes(record, server, clients_count=50 if quick else 200)
        # Its own server in open mode (one batch names 500 hosts), the same 10,000 hosts.
        await live_shapes.figure_mass_change(record, clients_count=50 if quick else 200)
        profiler.stop()
        notes.append(f"Server RSS, peak of each phase: {rss.summary()}.")
        # Fleet shapes last: they add 10,000 hosts of their own (bench/fleet_shapes.py).
        await fleet_shapes(record, server, key, quick=quick)
    results_write(started, quick)
    print("\n".join(notes))
    print(f"\nwrote {ROOT / 'bench' / 'results.md'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and clients, to check the script")
    parser.add_argument("--profile", action="store_true", help="py-spy the server in each phase (var/profile-*.txt)")
    args = parser.parse_args()
    asyncio.run(main(args.quick, args.profile))
