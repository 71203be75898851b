"""How far one process and one machine go: the same load on one daphne process and on two behind nginx.

    make bench-scaling     # or: .venv/bin/python -m bench.scaling [--quick]; about 5 minutes

Needs PostgreSQL (``BENCH_DATABASE_URL``, dropped and created anew), Redis
(``BENCH_REDIS_URL``, default db 5 of the local server: the processes' shared
channel layer and cache, as in production) and Debian's nginx (``apt-get install
nginx``). Everything listens on loopback; every load is bounded in time. Writes
bench/scaling-results.md.

Four topologies run side by side and are measured in turn within each round
(so a slow moment of the shared machine does not fall on one topology only):

- **one** - one daphne process, spoken to directly;
- **one+nginx** - the same process behind the project's nginx configuration
  (deploy/nginx/default.conf.template, rendered as tests/ops does), both
  upstream lines naming it: the proxy's own cost;
- **two** - two daphne processes, clients spoken to directly, taking them in turn;
- **two+nginx** - the same two processes behind the same configuration.

nginx hashes on the client's address (sticky sessions for Socket.IO's polling
transport). Each simulated client binds its own loopback address (127.0.0.x),
chosen by probing so that the hash splits them evenly between the two processes,
as it does over a real fleet's thousands of addresses.

Figures, each with its floor from the same run:
1. signed one-sample batches a second (64 agents, each a registered host) and
   the agents that makes at a 10 s interval; floor: ``GET /api/health`` through
   the same path;
2. signed 500-sample batches (8 senders), samples stored a second; floor:
   psycopg ``COPY`` of the same rows from this process;
3. ``GET /api/twin/state`` at 10,000 hosts (4 readers), reads a second; floor:
   the same build and encoding in this process, one after another.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from django.core.management import call_command
from django.db import connection

import bench.django_setup  # noqa: F401  (first: a fresh database, Django set up)
from bench.fleet import fleet_seed
from bench.harness import ROOT, Agent, Server, daphne, pct, register, sample
from hosts.models import Host
from hosts.services import enrollment_key_create
from metrics.models import Sample
from metrics.statements import samples_insert
from tests.ops.nginx import Proxy, nginx_binary, nginx_start
from twin.snapshot import snapshot_build

RESULTS = ROOT / "bench" / "scaling-results.md"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
SMALL_AGENTS = 64
INGEST_SENDERS = 8
PER_BATCH = 500
READERS = 4
SNAPSHOT_HOSTS = 10_000
INTERVAL_SECONDS = 10  # an agent's usual reporting interval
# Samples' times: one-sample batches a day back, each agent 10 ms further at each batch;
# 500-sample batches three days back, each batch its own 500 s.
SMALL_CLOCK: dict[str, datetime] = {}
BIG_START = datetime.now(UTC) - timedelta(days=3)
BIG_BATCHES_SENT = [0]
# The machine's load average (1, 5, 15 min) when the run started and ended: other work shares the cores.
LOAD: dict[str, tuple[float, float, float]] = {}


# --------------------------------------------------------------------------- CPU accounting


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pids_named(*names: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in names:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def machine_busy_seconds() -> float:
    """CPU time the whole machine spent busy so far, all cores (``/proc/stat``: all but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class CpuWatch:
    """Cores used by each party while a figure runs: servers, nginx, PostgreSQL, Redis, this client, and
    everything else on the machine ("others": other people's work on a shared machine)."""

    def __init__(self, parties: dict[str, Callable[[], list[int]]]) -> None:
        self.parties = parties

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._pids = {name: pids() for name, pids in self.parties.items()}
        self._before = {name: sum(cpu_seconds(p) for p in pids) for name, pids in self._pids.items()}
        self._busy = machine_busy_seconds()

    def stop(self) -> dict[str, float]:
        wall = time.monotonic() - self._t0
        used = {
            name: (sum(cpu_seconds(p) for p in pids) - self._before[name]) / wall for name, pids in self._pids.items()
        }
        used["others"] = max(0.0, (machine_busy_seconds() - self._busy) / wall - sum(used.values()))
        return used


# --------------------------------------------------------------------------- nginx


async def addresses_balanced(proxy: Proxy, replicas: list[Server], count: int) -> list[str]:
    """``count`` loopback addresses, half of which nginx's hash sends to each replica."""
    wanted = count // 2
    by_port: dict[str, list[str]] = {r.url.rsplit(":", 1)[1]: [] for r in replicas}
    for n in range(2, 255):
        address = f"127.0.0.{n}"
        request_id = f"scaling-probe-{n}-{time.monotonic_ns()}"
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(address, 0))) as http,
            http.get(f"{proxy.url}/api/health", headers={"X-Request-ID": request_id}) as response,
        ):
            await response.read()
        for _ in range(50):
            line = next(
                (orjson.loads(x) for x in proxy.log.read_text().splitlines() if request_id in x and x.startswith("{")),
                None,
            )
            if line is not None:
                break
            await asyncio.sleep(0.02)
        else:
            raise RuntimeError("nginx logged no line for a probe")
        port = line["upstream"].rsplit(":", 1)[-1]
        if len(by_port[port]) < wanted:
            by_port[port].append(address)
        if all(len(a) == wanted for a in by_port.values()):
            # Interleaved, so the first k of the list are split evenly too.
            return [a for pair in zip(*by_port.values(), strict=True) for a in pair]
    raise RuntimeError(f"could not balance {count} addresses: {by_port}")


# --------------------------------------------------------------------------- topologies


@dataclass
class Topology:
    name: str
    urls: list[str]
    servers: list[Server]
    proxy: Proxy | None = None
    results: dict[str, list[Any]] = field(default_factory=dict)

    def url(self, client: int) -> str:
        """Where client number ``client`` sends: the proxy, or (without one) the processes in turn."""
        return self.urls[client % len(self.urls)]

    def pids(self) -> list[int]:
        return [s.process.pid for s in self.servers]

    def nginx_pids(self) -> list[int]:
        return self.proxy.worker_pids() if self.proxy else []


def sessions(addresses: list[str]) -> list[aiohttp.ClientSession]:
    """One HTTP client per simulated machine, each from its own loopback address."""
    return [
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(a, 0), limit=0), raise_for_status=False)
        for a in addresses
    ]


async def run_for(seconds: float, jobs: list[Callable[[], Awaitable[None]]]) -> None:
    deadline = time.monotonic() + seconds

    async def loop(job: Callable[[], Awaitable[None]]) -> None:
        while time.monotonic() < deadline:
            await job()

    await asyncio.gather(*(loop(j) for j in jobs))


def replica_split(servers: list[Server], name: str, labels: dict[str, str]) -> list[float]:
    """A counter of our own /metrics, from each replica directly (nginx refuses /metrics)."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    values = []
    for server in servers:
        with urllib.request.urlopen(f"{server.url}/metrics", timeout=15) as response:
            text = response.read().decode()
        values.append(
            sum(
                s.value
                for family in text_string_to_metric_families(text)
                for s in family.samples
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
            )
        )
    return values


# --------------------------------------------------------------------------- figures


async def small_batches(
    topo: Topology, agents: list[Agent], clients: list[aiohttp.ClientSession], seconds: float
) -> None:
    """Signed one-sample batches from every agent as fast as each gets answers; then the floor."""
    clock = SMALL_CLOCK
    for agent in agents:
        clock.setdefault(agent.hostname, datetime.now(UTC) - timedelta(days=1))
    latencies: list[float] = []

    def poster(agent: Agent, http: aiohttp.ClientSession, url: str) -> Callable[[], Awaitable[None]]:
        async def post() -> None:
            clock[agent.hostname] += timedelta(milliseconds=10)
            body, headers = agent.signed([sample(agent.hostname, clock[agent.hostname])])
            t0 = time.perf_counter()
            async with http.post(f"{url}/api/metrics/batch", data=body, headers=headers) as response:
                await response.read()
                assert response.status == 202, (response.status, await response.text())
            latencies.append(time.perf_counter() - t0)

        return post

    def getter(http: aiohttp.ClientSession, url: str) -> Callable[[], Awaitable[None]]:
        async def get() -> None:
            t0 = time.perf_counter()
            async with http.get(f"{url}/api/health") as response:
                await response.read()
                assert response.status == 200
            latencies.append(time.perf_counter() - t0)

        return get

    before = replica_split(topo.servers, "twin_ingest_batches_total", {"outcome": "stored"})
    watch = cpu_watch(topo)
    watch.start()
    await run_for(seconds, [poster(a, h, topo.url(i)) for i, (a, h) in enumerate(zip(agents, clients, strict=True))])
    cores = watch.stop()
    rate, p99 = len(latencies) / seconds, pct(latencies, 0.99)
    after = replica_split(topo.servers, "twin_ingest_batches_total", {"outcome": "stored"})
    latencies.clear()
    await run_for(seconds, [getter(h, topo.url(i)) for i, h in enumerate(clients)])
    floor, floor_p99 = len(latencies) / seconds, pct(latencies, 0.99)
    split = [a - b for a, b in zip(after, before, strict=True)]
    topo.results.setdefault("small", []).append(
        {"rate": rate, "p99": p99, "floor": floor, "floor_p99": floor_p99, "split": split, "cores": cores}
    )


async def big_batches(topo: Topology, agents: list[Agent], clients: list[aiohttp.ClientSession], batches: int) -> None:
    """Pre-signed 500-sample batches from each sender, one after another; samples stored a second."""
    # Each batch its own stretch of time (a sample is stored once per host and timestamp).
    first_batch = BIG_BATCHES_SENT[0]
    BIG_BATCHES_SENT[0] += batches
    prepared = [
        [
            agent.signed(
                [
                    sample(agent.hostname, BIG_START + timedelta(seconds=(first_batch + b) * PER_BATCH + i), i=i)
                    for i in range(PER_BATCH)
                ]
            )
            for b in range(batches)
        ]
        for agent in agents
    ]

    async def sender(http: aiohttp.ClientSession, url: str, own: list[tuple[bytes, dict[str, str]]]) -> None:
        for body, headers in own:
            async with http.post(f"{url}/api/metrics/batch", data=body, headers=headers) as response:
                result = await response.json()
                assert response.status == 202 and result["accepted"] == PER_BATCH, result

    before = replica_split(topo.servers, "twin_ingest_samples_total", {"outcome": "accepted"})
    watch = cpu_watch(topo)
    watch.start()
    t0 = time.perf_counter()
    await asyncio.gather(
        *(sender(h, topo.url(i), own) for i, (h, own) in enumerate(zip(clients, prepared, strict=True)))
    )
    rate = len(agents) * batches * PER_BATCH / (time.perf_counter() - t0)
    cores = watch.stop()
    after = replica_split(topo.servers, "twin_ingest_samples_total", {"outcome": "accepted"})
    split = [a - b for a, b in zip(after, before, strict=True)]
    assert sum(split) == len(agents) * batches * PER_BATCH, f"samples lost: {split}"
    topo.results.setdefault("big", []).append(
        {"rate": rate, "floor": copy_floor(len(agents) * batches), "split": split, "cores": cores}
    )


_floor_host: list[Host] = []


def copy_floor(batches: int) -> float:
    """The same number of rows by psycopg COPY from this process, one transaction per 500 rows."""
    if not _floor_host:
        _floor_host.append(Host.objects.create(hostname="scaling-copy-floor"))
    host = _floor_host[0]
    base = Sample.objects.filter(host=host).count()
    start = datetime.now(UTC) - timedelta(days=5)
    received = datetime.now(UTC)
    rows = [
        (host.pk, start + timedelta(seconds=base + i), received, 42.5, 63.2, 1.72, 7200 + i, i * 10**6, i * 2**21)
        for i in range(batches * PER_BATCH)
    ]
    t0 = time.perf_counter()
    for chunk in range(0, len(rows), PER_BATCH):
        samples_insert(rows[chunk : chunk + PER_BATCH])
    return len(rows) / (time.perf_counter() - t0)


async def snapshot_reads(topo: Topology, clients: list[aiohttp.ClientSession], seconds: float) -> None:
    """``GET /api/twin/state`` from every reader as fast as each gets answers."""
    latencies: list[float] = []
    sizes: list[int] = []

    def reader(http: aiohttp.ClientSession, url: str) -> Callable[[], Awaitable[None]]:
        async def read() -> None:
            t0 = time.perf_counter()
            async with http.get(f"{url}/api/twin/state") as response:
                body = await response.read()
                assert response.status == 200
            latencies.append(time.perf_counter() - t0)
            sizes.append(len(body))

        return read

    watch = cpu_watch(topo)
    watch.start()
    await run_for(seconds, [reader(h, topo.url(i)) for i, h in enumerate(clients)])
    cores = watch.stop()
    topo.results.setdefault("snapshot", []).append(
        {
            "rate": len(latencies) / seconds,
            "p50": pct(latencies, 0.5),
            "p99": pct(latencies, 0.99),
            "size": statistics.median(sizes),
            "floor": snapshot_floor(),
            "cores": cores,
        }
    )


def snapshot_floor() -> float:
    """Builds and encodings a second in this process, one after another (best of three)."""
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        orjson.dumps(snapshot_build())
        best = min(best, time.perf_counter() - t0)
    return 1 / best


def _postgres() -> list[int]:
    return pids_named("postgres")


def _redis() -> list[int]:
    return pids_named("redis-server")


def cpu_watch(topo: Topology) -> CpuWatch:
    return CpuWatch(
        {
            "daphne": topo.pids,
            "nginx": topo.nginx_pids,
            "postgres": _postgres,
            "redis": _redis,
            "client": lambda: [os.getpid()],
        }
    )


# --------------------------------------------------------------------------- results


def median_of(topo: Topology, figure: str, key: str) -> float:
    return statistics.median(r[key] for r in topo.results[figure])


def cpu_per(topo: Topology, figure: str, party: str, scale: float) -> float:
    """CPU time of ``party`` per unit of work (batch, sample, read), median over rounds, times ``scale``.

    Steadier than the rates on a shared machine: contention slows the work, it changes little what it costs.
    """
    return statistics.median(r["cores"][party] / r["rate"] for r in topo.results[figure]) * scale


def cores_summary(topo: Topology, figure: str) -> str:
    parties = topo.results[figure][0]["cores"].keys()
    shares = {p: statistics.median(r["cores"][p] for r in topo.results[figure]) for p in parties}
    return ", ".join(f"{p} {v:.2f}" for p, v in shares.items() if v >= 0.01)


def results_write(topologies: list[Topology], started: datetime, rounds: int, seconds: float, quick: bool) -> str:
    one = topologies[0]
    lines = [
        "# Scaling: one process, and two behind nginx, on one machine",
        "",
        f"`python -m bench.scaling{' --quick' if quick else ''}`, {started:%Y-%m-%d %H:%M} UTC, on "
        f"{platform.node()}: **{os.cpu_count()} cores** (`nproc`), Python {platform.python_version()}, "
        f"PostgreSQL {connection.cursor().connection.info.server_version // 10000}, Redis channel layer and cache, "
        f"nginx from Debian. {rounds} rounds; within each round the four topologies are measured in turn; "
        "each figure is the median of the rounds, with every round's value.",
        "",
        "**Read this first.** The machine has two cores, and everything runs on them at once: the daphne "
        "processes, nginx, PostgreSQL, Redis and the load generator (one Python process, aiohttp). Two server "
        "processes on two cores that also carry the client and the database cannot show what two processes on "
        "their own cores would do; the cores column says where the CPU went (1.00 = one core busy; 'others' is "
        "everything else the machine ran meanwhile). The machine "
        "was shared with other work during the run: load average "
        f"{' / '.join(f'{x:.1f}' for x in LOAD['start'])} (1/5/15 min) at the start, "
        f"{' / '.join(f'{x:.1f}' for x in LOAD['end'])} at the end. "
        "What these figures do show: what one process sustains here, "
        "what nginx costs, and whether a second process helps when the cores are already taken.",
        "",
    ]

    def rounds_text(topo: Topology, figure: str, key: str, fmt: str) -> str:
        return ", ".join(format(r[key], fmt) for r in topo.results[figure])

    # Figure 1
    lines += [
        f"## 1. Signed one-sample batches ({SMALL_AGENTS} agents, each as fast as it gets answers, {seconds:g} s)",
        "",
        f"The agents a deployment carries at a {INTERVAL_SECONDS} s interval is batches a second x "
        f"{INTERVAL_SECONDS}. Floor: `GET /api/health` (a trivial view of the same app) from the same "
        "clients through the same path, right after.",
        "",
        "| topology | batches/s | agents at 10 s | p99 | floor: health req/s (p99) | ratio to floor | vs one | "
        "split between processes | CPU per batch: daphne, PostgreSQL | cores used (median) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for topo in topologies:
        rate, floor = median_of(topo, "small", "rate"), median_of(topo, "small", "floor")
        split = topo.results["small"][-1]["split"]
        lines.append(
            f"| {topo.name} | {rate:,.0f} ({rounds_text(topo, 'small', 'rate', ',.0f')}) | "
            f"{rate * INTERVAL_SECONDS:,.0f} | {median_of(topo, 'small', 'p99') * 1000:.0f} ms | "
            f"{floor:,.0f} ({median_of(topo, 'small', 'floor_p99') * 1000:.0f} ms) | {rate / floor:.0%} | "
            f"{rate / median_of(one, 'small', 'rate'):.2f}x | {' / '.join(f'{s:,.0f}' for s in split)} | "
            f"{cpu_per(topo, 'small', 'daphne', 1000):.1f} ms, {cpu_per(topo, 'small', 'postgres', 1000):.1f} ms | "
            f"{cores_summary(topo, 'small')} |"
        )
    # Figure 2
    lines += [
        "",
        f"## 2. Signed {PER_BATCH}-sample batches ({INGEST_SENDERS} senders, pre-signed, every sample counted)",
        "",
        "Floor: psycopg `COPY` of the same number of rows into the same table from the benchmark's process, "
        "one transaction per 500 rows, right after.",
        "",
        "| topology | samples/s | floor: COPY rows/s | ratio to floor | vs one | samples per process | "
        "CPU per sample: daphne, PostgreSQL | cores used |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for topo in topologies:
        rate, floor = median_of(topo, "big", "rate"), median_of(topo, "big", "floor")
        split = topo.results["big"][-1]["split"]
        lines.append(
            f"| {topo.name} | {rate:,.0f} ({rounds_text(topo, 'big', 'rate', ',.0f')}) | {floor:,.0f} | "
            f"{rate / floor:.0%} | {rate / median_of(one, 'big', 'rate'):.2f}x | "
            f"{' / '.join(f'{s:,.0f}' for s in split)} | "
            f"{cpu_per(topo, 'big', 'daphne', 1e6):.0f} µs, {cpu_per(topo, 'big', 'postgres', 1e6):.0f} µs | "
            f"{cores_summary(topo, 'big')} |"
        )
    # Figure 3
    lines += [
        "",
        f"## 3. `GET /api/twin/state` at {SNAPSHOT_HOSTS:,} hosts ({READERS} readers, {seconds:g} s)",
        "",
        "Floor: the same build (`snapshot_build`) and encoding (`orjson.dumps`) in the benchmark's process, "
        "one after another: what one core does with no HTTP at all.",
        "",
        "| topology | reads/s | p50 | p99 | body | floor: builds/s in-process | ratio to floor | vs one | "
        "CPU per read: daphne, PostgreSQL | cores used |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for topo in topologies:
        rate, floor = median_of(topo, "snapshot", "rate"), median_of(topo, "snapshot", "floor")
        lines.append(
            f"| {topo.name} | {rate:.2f} ({rounds_text(topo, 'snapshot', 'rate', '.2f')}) | "
            f"{median_of(topo, 'snapshot', 'p50') * 1000:.0f} ms | "
            f"{median_of(topo, 'snapshot', 'p99') * 1000:.0f} ms | "
            f"{median_of(topo, 'snapshot', 'size') / 1e6:.1f} MB | {floor:.2f} | {rate / floor:.0%} | "
            f"{rate / median_of(one, 'snapshot', 'rate'):.2f}x | "
            f"{cpu_per(topo, 'snapshot', 'daphne', 1000):.0f} ms, "
            f"{cpu_per(topo, 'snapshot', 'postgres', 1000):.0f} ms | "
            f"{cores_summary(topo, 'snapshot')} |"
        )
    lines += [
        "",
        "## How it was run",
        "",
        "- daphne as `make run` starts it (`python -m twinsite.serve`), `TWIN_AGENT_AUTH=signed`, "
        "`TWIN_INGEST_RATE_PER_MINUTE` raised out of the way (the throttle still runs, on the shared Redis "
        "cache), background jobs off (`TWIN_JOBS_ENABLED=false`) so no rollup or prune runs inside a figure, "
        "`DB_POOL_MAX` 16 per process.",
        "- Topologies: `one` (a process, spoken to directly), `one+nginx` (the same process behind nginx, both "
        "upstream lines naming it), `two` (two processes, each client sending to one of them in turn, no proxy), "
        "`two+nginx` (the same two behind nginx). All four run at once and are measured in turn.",
        "- CPU per batch, sample or read: the cores a party used divided by the rate, median over rounds. On a "
        "shared machine it is steadier than the rates: contention slows the work more than it changes its cost.",
        "- nginx: deploy/nginx/default.conf.template rendered by tests/ops/nginx.py (one worker process, "
        "access log to a file), `hash $binary_remote_addr consistent` as shipped.",
        "- Clients: one aiohttp session per simulated machine, each bound to its own 127.0.0.x address, chosen "
        "so that the hash splits them evenly; the split columns are counted by each process's own `/metrics` "
        "(`twin_ingest_batches_total`, `twin_ingest_samples_total`).",
        "- The 500-sample figure runs after the one-sample figure in each round, and the snapshot figure after "
        f"both, once {SNAPSHOT_HOSTS:,} hosts are seeded (nobody subscribed to Socket.IO, so the live feed "
        "builds nothing).",
    ]
    text = "\n".join(lines) + "\n"
    RESULTS.write_text(text)
    return text


# --------------------------------------------------------------------------- main


async def main(quick: bool) -> None:
    started = datetime.now(UTC)
    nginx_binary()
    (ROOT / "var").mkdir(exist_ok=True)
    call_command("migrate", verbosity=0)
    _, key = enrollment_key_create(name="scaling")
    rounds = 1 if quick else 3
    seconds = 3.0 if quick else 6.0
    batches = 3 if quick else 20
    LOAD["start"] = os.getloadavg()
    env = {
        "TWIN_AGENT_AUTH": "signed",
        "TWIN_PUBLIC_READ": "true",
        "DEBUG": "false",
        "REDIS_URL": REDIS_URL,
        "CHANNEL_LAYER_PREFIX": f"bench-scaling-{os.getpid()}",
        "TWIN_INGEST_RATE_PER_MINUTE": "100000000",
        "TWIN_JOBS_ENABLED": "false",
        "TWIN_STALE_AFTER_SECONDS": "600",
        "TWIN_OFFLINE_AFTER_SECONDS": "1800",
        "LOG_LEVEL": "WARNING",
    }
    max_body = 8 * 1024 * 1024
    with ExitStack() as stack, tempfile.TemporaryDirectory() as scratch:
        first = stack.enter_context(daphne("twinsite.asgi:application", **env))
        second = stack.enter_context(daphne("twinsite.asgi:application", **env))
        proxy_one = nginx_start(Path(scratch) / "nginx-one", [first], max_body_bytes=max_body)
        proxy_two = nginx_start(Path(scratch) / "nginx-two", [first, second], max_body_bytes=max_body)
        for proxy in (proxy_one, proxy_two):
            stack.callback(proxy.process.wait, 10)
            stack.callback(proxy.process.terminate)
        topologies = [
            Topology("one", [first.url], [first]),
            Topology("one+nginx", [proxy_one.url], [first], proxy_one),
            # Without a proxy, clients take the processes in turn: nginx's part, apart from the second process's.
            Topology("two", [first.url, second.url], [first, second]),
            Topology("two+nginx", [proxy_two.url], [first, second], proxy_two),
        ]
        wanted = max(SMALL_AGENTS, INGEST_SENDERS, READERS)
        addresses = await addresses_balanced(proxy_two, [first, second], wanted)
        async with aiohttp.ClientSession() as http:
            small = [await register(http, first.url, key, f"scaling-small-{i:02d}") for i in range(SMALL_AGENTS)]
            senders = [await register(http, first.url, key, f"scaling-big-{i}") for i in range(INGEST_SENDERS)]
        clients = sessions(addresses)
        try:
            for r in range(rounds):
                for topo in topologies:
                    await small_batches(topo, small, clients[:SMALL_AGENTS], seconds)
                    await big_batches(topo, senders, clients[:INGEST_SENDERS], batches)
                    print(
                        f"round {r + 1} {topo.name}: small {topo.results['small'][-1]['rate']:,.0f}/s, "
                        f"big {topo.results['big'][-1]['rate']:,.0f} samples/s",
                        flush=True,
                    )
            fleet_seed(hosts=SNAPSHOT_HOSTS, prefix="node")
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE")
            for r in range(rounds):
                for topo in topologies:
                    await snapshot_reads(topo, clients[:READERS], seconds)
                    print(
                        f"round {r + 1} {topo.name}: snapshot {topo.results['snapshot'][-1]['rate']:.2f}/s", flush=True
                    )
        finally:
            for client in clients:
                await client.close()
    LOAD["end"] = os.getloadavg()
    print(results_write(topologies, started, rounds, seconds, quick))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one short round, to check the script")
    args = parser.parse_args()
    asyncio.run(main(args.quick))
