"""The twin's benchmark: every figure measured beside its floor, in one run.

    make bench            # or: .venv/bin/python bench/run.py [--quick]

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
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/twin_bench")
SECRET = "bench-only-secret"
os.environ.update(
    {
        "DATABASE_URL": DATABASE_URL,
        "SECRET_KEY": SECRET,
        "TWIN_CREDENTIAL_KEY": SECRET,
        "DJANGO_SETTINGS_MODULE": "twinsite.settings",
        "LOG_LEVEL": "WARNING",
    }
)
os.environ.pop("REDIS_URL", None)
# This script calls the ORM between measurements, from its event loop, on
# purpose; the servers it starts do not inherit this.
BENCH_ONLY_ENV = {"DJANGO_ALLOW_ASYNC_UNSAFE": "true"}
os.environ.update(BENCH_ONLY_ENV)


def database_recreate() -> None:
    import psycopg

    url = urlparse(DATABASE_URL)
    name = url.path.lstrip("/")
    admin = url._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


database_recreate()

import aiohttp  # noqa: E402
import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from bench.fleet import fleet_seed  # noqa: E402
from hosts.credentials import signature_compute  # noqa: E402
from hosts.models import Host  # noqa: E402
from hosts.services import enrollment_key_create  # noqa: E402
from metrics.models import Sample  # noqa: E402
from metrics.services import SAMPLE_COLUMNS  # noqa: E402
from twin.snapshot import HOST_COLUMNS, _rows, snapshot_build  # noqa: E402
from twinsite.serve import daphne_arguments  # noqa: E402

# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen

    def peak_rss_mb(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(x for x in status.splitlines() if x.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(x for x in status.splitlines() if x.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024


@contextmanager
def daphne(app: str, **env: str) -> Iterator[Server]:
    port = free_port()
    # The twin's own launcher and daphne options, for the twin and the bare floor alike.
    command = daphne_arguments(["--access-log", "/dev/null", "-b", "127.0.0.1", "-p", str(port)])
    command[-1] = app
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", *command],
        cwd=ROOT,
        env={**{k: v for k, v in os.environ.items() if k not in BENCH_ONLY_ENV}, **env},
        stdout=subprocess.DEVNULL,
        stderr=open(ROOT / "var" / f"bench-{app.split('.')[0]}.log", "w"),  # noqa: SIM115
    )
    server = Server(f"http://127.0.0.1:{port}", process)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.2)
    try:
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass
class Agent:
    hostname: str
    key_id: str
    secret: str
    session: str = field(default_factory=lambda: f"bench-{random.getrandbits(40):x}")
    sequence: int = 0

    def signed(self, samples: list[dict[str, Any]]) -> tuple[bytes, dict[str, str]]:
        self.sequence += 1
        body = orjson.dumps({"agent_session": self.session, "sequence": self.sequence, "samples": samples})
        stamp = str(int(time.time()))
        return body, {
            "Content-Type": "application/json",
            "X-Twin-Key-Id": self.key_id,
            "X-Twin-Timestamp": stamp,
            "X-Twin-Signature": signature_compute(secret=self.secret, timestamp=stamp, body=body),
        }


def sample(hostname: str, at: datetime, cpu: float = 42.5, i: int = 0) -> dict[str, Any]:
    return {
        "hostname": hostname,
        "timestamp": iso(at),
        "cpu_load": cpu,
        "memory_used_percent": 63.2,
        "load_average": 1.72,
        "uptime_seconds": 7200 + i,
        "agent_version": "0.1.0",
        "platform": "Linux-x86_64",
        "net_bytes_tx": 1_000_000 * i,
        "net_bytes_rx": 2_000_000 * i,
    }


async def register(http: aiohttp.ClientSession, url: str, key: str, hostname: str) -> Agent:
    async with http.post(
        f"{url}/api/hosts/register",
        json={"hostname": hostname, "platform": "Linux-x86_64", "agent_version": "0.1.0"},
        headers={"Authorization": f"Bearer {key}"},
    ) as response:
        body = await response.json()
        assert response.status in (200, 201), body
        return Agent(hostname, body["keyId"], body["signingSecret"])


async def run_for(seconds: float, workers: int, job: Callable[[int], Awaitable[None]]) -> None:
    deadline = time.monotonic() + seconds

    async def loop(worker: int) -> None:
        while time.monotonic() < deadline:
            await job(worker)

    await asyncio.gather(*(loop(w) for w in range(workers)))


# --------------------------------------------------------------------------- figures

results: list[dict[str, Any]] = []
notes: list[str] = []


def record(figure: str, measured: str, floor: str, ratio: str, target: str, met: bool | None) -> None:
    results.append(
        {"figure": figure, "measured": measured, "floor": floor, "ratio": ratio, "target": target, "met": met}
    )
    print(f"{figure}: {measured} | floor {floor} | {ratio} | target {target} | {'met' if met else 'MISSED'}")


async def figure_ingest(server: Server, agents: list[Agent], batches: int) -> None:
    """1. 500-sample signed batches from 8 concurrent senders vs psycopg COPY of the same rows."""
    start = datetime.now(UTC) - timedelta(days=2)
    per_batch = 500
    before = Sample.objects.count()

    async def sender(http: aiohttp.ClientSession, agent: Agent, offset: int, count: int) -> None:
        for b in range(count):
            base = start + timedelta(seconds=(offset + b) * per_batch)
            body, headers = agent.signed(
                [sample(agent.hostname, base + timedelta(seconds=i), i=i) for i in range(per_batch)]
            )
            async with http.post(f"{server.url}/api/metrics/batch", data=body, headers=headers) as response:
                result = await response.json()
                assert response.status == 202 and result["accepted"] == per_batch, result

    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(sender(http, a, 0, 2) for a in agents))  # warm up
        t0 = time.perf_counter()
        await asyncio.gather(*(sender(http, a, 2, batches) for a in agents))
        elapsed = time.perf_counter() - t0
    stored = Sample.objects.count() - before
    expected = len(agents) * (batches + 2) * per_batch
    assert stored == expected, f"stored {stored}, expected {expected}: samples were lost"
    ingest_rate = len(agents) * batches * per_batch / elapsed

    # Floor: the same rows, COPY from one Python process, one transaction per 500 rows.
    floor_host = Host.objects.create(hostname="bench-copy-floor")
    received = datetime.now(UTC)
    rows = [
        (
            floor_host.pk,
            start + timedelta(seconds=i),
            received,
            42.5,
            63.2,
            1.72,
            7200 + i,
            1_000_000 * i,
            2_000_000 * i,
        )
        for i in range(len(agents) * batches * per_batch)
    ]
    columns = ", ".join(SAMPLE_COLUMNS)
    t0 = time.perf_counter()
    for chunk in range(0, len(rows), per_batch):
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(f"COPY {Sample._meta.db_table} ({columns}) FROM STDIN") as copy,
        ):
            for row in rows[chunk : chunk + per_batch]:
                copy.write_row(row)
    floor_rate = len(rows) / (time.perf_counter() - t0)
    ratio = ingest_rate / floor_rate
    record(
        "1. Ingest, 500-sample signed batches, 8 senders",
        f"{ingest_rate:,.0f} samples/s ({len(agents) * batches} batches, {elapsed:.1f} s, none lost)",
        f"{floor_rate:,.0f} rows/s (COPY, 500 rows a transaction)",
        f"{ratio:.0%}",
        ">= 50%",
        ratio >= 0.5,
    )


async def figure_small_batches(server: Server, agents: list[Agent], seconds: float) -> None:
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

        await run_for(1.0, len(agents), post_one)  # warm up
        latencies.clear()
        counter["n"] = 0
        await run_for(seconds, len(agents), post_one)
        ingest_rps, ingest_p99 = counter["n"] / seconds, pct(latencies, 0.99)
        latencies.clear()
        counter["n"] = 0
        await run_for(seconds, len(agents), get_health)
        floor_rps, floor_p99 = counter["n"] / seconds, pct(latencies, 0.99)
    ratio = ingest_rps / floor_rps
    record(
        "2. Small batches, 1 sample, 64 senders",
        f"{ingest_rps:,.0f} req/s, p99 {ingest_p99 * 1000:.0f} ms",
        f"{floor_rps:,.0f} req/s, p99 {floor_p99 * 1000:.0f} ms (GET /api/health)",
        f"{ratio:.0%}",
        ">= 50%",
        ratio >= 0.5,
    )


def snapshot_queries() -> int:
    with CaptureQueriesContext(connection) as ctx:
        snapshot_build()
    return len(ctx.captured_queries)


async def figure_snapshot(server: Server, queries_small: int, small_hosts: int) -> None:
    """3. GET /api/twin/state at 10,000 hosts vs one SELECT of the rows plus orjson.dumps."""
    hosts = Host.objects.count()
    queries_large = snapshot_queries()
    server_times: list[float] = []
    for _ in range(3):
        snapshot_build()
    for _ in range(21):
        t0 = time.perf_counter()
        orjson.dumps(snapshot_build())
        server_times.append(time.perf_counter() - t0)
    http_times: list[float] = []
    async with aiohttp.ClientSession() as http:
        for _ in range(11):
            t0 = time.perf_counter()
            async with http.get(f"{server.url}/api/twin/state") as response:
                body = await response.read()
            http_times.append(time.perf_counter() - t0)
    document = snapshot_build()
    floor_times: list[float] = []
    for _ in range(21):
        t0 = time.perf_counter()
        _rows(Host.objects.order_by("hostname").values_list(*HOST_COLUMNS))
        with connection.cursor() as cursor:
            cursor.execute("SELECT source_id, target_id, capacity_gbps FROM hosts_link")
            cursor.fetchall()
        orjson.dumps(document)
        floor_times.append(time.perf_counter() - t0)
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


class RawSocketIOClient:
    """A minimal Engine.IO 4 / Socket.IO 5 websocket client that only scans for markers.

    200 full python-socketio clients would spend the machine's two cores
    parsing JSON; this one reads frames, answers pings and timestamps the
    first frame containing each awaited marker, which is what latency needs.
    """

    def __init__(self) -> None:
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.watch: dict[str, float] = {}
        self.bytes = 0
        self.states = 0
        self.deltas = 0
        self.state_times: list[float] = []
        self._task: asyncio.Task | None = None

    async def connect(self, http: aiohttp.ClientSession, url: str, delta: bool = False) -> None:
        ws_url = url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        self.ws = await http.ws_connect(ws_url, max_msg_size=0)
        await self.ws.receive()  # engine.io open
        await self.ws.send_str("40/digital-twin,")
        while not (await self.ws.receive()).data.startswith("40/digital-twin,"):
            pass
        if delta:
            await self.ws.send_str('42/digital-twin,["subscribe",{"mode":"delta"}]')
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            data = msg.data
            if data == "2":
                await self.ws.send_str("3")
                continue
            now = time.perf_counter()
            self.bytes += len(data)
            if data.startswith('42/digital-twin,["twin-state"'):
                self.states += 1
                self.state_times.append(now)
            elif data.startswith('42/digital-twin,["twin-delta"'):
                self.deltas += 1
            for marker, seen in self.watch.items():
                if not seen and marker in data:
                    self.watch[marker] = now

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
        if self.ws:
            await self.ws.close()


async def connect_clients(http: aiohttp.ClientSession, url: str, count: int, delta: bool = False) -> list:
    clients = [RawSocketIOClient() for _ in range(count)]
    for start in range(0, count, 20):
        await asyncio.gather(*(c.connect(http, url, delta) for c in clients[start : start + 20]))
    return clients


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
        flood_start = time.perf_counter()
        flood_agents = [probe]

        async def flood(worker: int) -> None:
            body, headers = flood_agents[0].signed([sample(probe.hostname, datetime.now(UTC), cpu=random.random())])
            async with http.post(f"{server.url}/api/metrics/batch", data=body, headers=headers) as response:
                await response.read()

        await run_for(6.0, 8, flood)
        await asyncio.sleep(1.5)
        windows = [
            max(sum(1 for t in c.state_times if w <= t - flood_start < w + 1.0) for w in [x / 10 for x in range(0, 60)])
            for c in clients
        ]
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
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        # One client takes full states, the others deltas: 10,000-host full
        # states to 200 clients would be a gigabyte a push, which is what the
        # delta mode is for. Every client still gets full states at connect.
        full = await connect_clients(http, server.url, 1)
        delta = await connect_clients(http, server.url, clients_count - 1, delta=True)
        await asyncio.sleep(3)
        for c in full + delta:
            c.bytes = 0
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
        deltas_each = statistics.mean(c.deltas for c in delta)
        notes.append(
            f"Figure 6: the full client got {full[0].states} states, each delta client {deltas_each:.1f} deltas."
        )
        peak = server.peak_rss_mb()
        for c in full + delta:
            await c.close()
    record(
        f"5. Server peak RSS, {len(hosts):,} hosts, {clients_count} clients connected",
        f"{peak:.0f} MB",
        "-",
        "-",
        "<= 300 MB",
        peak <= 300,
    )
    record(
        f"6. Bytes per client per second, {len(hosts):,} hosts, 100 hosts changing a second",
        f"delta mode {delta_rate / 1e3:,.1f} kB/s",
        f"full mode {full_rate / 1e6:,.2f} MB/s",
        f"{delta_rate / full_rate:.1%} of full" if full_rate else "no full state arrived",
        "(measure)",
        None,
    )


# --------------------------------------------------------------------------- main


def results_write(started: datetime, quick: bool) -> None:
    lines = [
        "# Benchmark results",
        "",
        f"Run {started:%Y-%m-%d %H:%M} UTC by `bench/run.py{' --quick' if quick else ''}` on {platform.node()}: "
        f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
        f"PostgreSQL {connection.cursor().connection.info.server_version // 10000}, one daphne process, "
        "in-memory channel layer, clients on the same machine.",
        "",
        "| figure | measured | floor (same run) | ratio | target | met |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        met = "-" if r["met"] is None else ("yes" if r["met"] else "**no**")
        lines.append(f"| {r['figure']} | {r['measured']} | {r['floor']} | {r['ratio']} | {r['target']} | {met} |")
    lines += ["", *[f"- {n}" for n in notes], ""]
    analysis = ROOT / "bench" / "analysis.md"
    if analysis.exists():
        lines.append(analysis.read_text())
    (ROOT / "bench" / "results.md").write_text("\n".join(lines))


async def main(quick: bool) -> None:
    started = datetime.now(UTC)
    (ROOT / "var").mkdir(exist_ok=True)
    call_command("migrate", verbosity=0)
    _, key = enrollment_key_create(name="bench")
    env = {"TWIN_AGENT_AUTH": "signed", "TWIN_PUBLIC_READ": "true", "DEBUG": "false"}
    with daphne("twinsite.asgi:application", **env) as server, daphne("bench.bare_socketio:application") as bare:
        async with aiohttp.ClientSession() as http:
            senders = [await register(http, server.url, key, f"bench-sender-{i}") for i in range(8)]
            small = [await register(http, server.url, key, f"bench-small-{i:02d}") for i in range(64)]
            probe = await register(http, server.url, key, "bench-probe")
            poller = await register(http, server.url, key, "bench-poller")
        await figure_ingest(server, senders, batches=5 if quick else 25)
        await figure_small_batches(server, small, seconds=3 if quick else 10)
        small_hosts, queries_small = Host.objects.count(), snapshot_queries()
        fleet_seed(hosts=1000, prefix="k")
        await figure_push(server, bare, probe, clients_count=50 if quick else 200, probes=5 if quick else 15)
        fleet_seed(hosts=10_000, prefix="node")
        Host.objects.get(hostname="bench-poller").reports_for.add(*Host.objects.filter(hostname__startswith="node-"))
        Host.objects.filter(hostname__startswith="k-").delete()
        await figure_snapshot(server, queries_small, small_hosts)
        await figure_memory_and_delta(server, poller, clients_count=50 if quick else 200, seconds=5 if quick else 15)
    results_write(started, quick)
    print("\n".join(notes))
    print(f"\nwrote {ROOT / 'bench' / 'results.md'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and clients, to check the script")
    asyncio.run(main(parser.parse_args().quick))
