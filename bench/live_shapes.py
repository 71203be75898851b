"""Figures of the live side at fleet shape (issue 16, items 4-6), each beside its floor in the same run.

Called from ``bench.run`` (``make bench``), or alone, with their own servers and fleets:

    .venv/bin/python -m bench.live_shapes [--quick] [--only latency,snapshot,memory]

- Delta latency: 200 official Socket.IO clients (socket.io-client 4.8 under
  Node, ``bench/node``; ``npm ci`` there first) subscribed to deltas at 1,000
  hosts, while another agent changes its host four times a second, so that
  pushes go out at every slot, as in a real fleet; a probe's change is timed
  from before its batch is posted to its arrival at each client. Floor: the
  same clients on a bare python-socketio server, sent the same delta.
- Snapshot rounds: build + encode at 10,000 hosts against the SELECTs +
  ``orjson.dumps``, alternating, in several rounds; every round must meet.
- Everything changes: a change touching all 10,000 hosts with 199 delta
  clients that resync as the dashboard does, and one full-state client; the
  server's peak RSS, and how long until every client holds the new state.
- A mass change (issue 25, item 3): 200 official clients subscribed to deltas
  in the fields form at 10,000 hosts; 2,000 hosts change (four 500-host
  batches), then every host (twenty): the time from the first batch posted to
  each client holding every changed host, and the server's peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
from django.db import connection
from django.test.utils import CaptureQueriesContext

import bench.django_setup  # noqa: F401  (first: a fresh database, Django set up, when run alone)
from bench.harness import ROOT, Agent, RawSocketIOClient, Server, connect_clients, pct, sample

Record = Callable[[str, str, str, str, str, bool | None], None]
NODE_DIR = ROOT / "bench" / "node"
DEBUG = bool(os.environ.get("LIVE_SHAPES_DEBUG"))


# --------------------------------------------------------------------------- delta latency


class NodeClients:
    """The official client: ``bench/node/delta_clients.js``, many sockets in one Node process."""

    def __init__(self, url: str, count: int, probe: str, *, full: bool = False, fields: bool = False) -> None:
        mode = "--full" if full else "--fields" if fields else "--delta"
        self.args = [str(NODE_DIR / "delta_clients.js"), url, str(count), probe, mode]
        self.count = count
        # The twin sends every client a state at once; the bare floor sends nothing until a broadcast.
        self.states_expected = 0 if full else count
        self.process: asyncio.subprocess.Process | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("node") is not None and (NODE_DIR / "node_modules" / "socket.io-client").exists()

    async def __aenter__(self) -> NodeClients:
        self.process = await asyncio.create_subprocess_exec(
            shutil.which("node") or "node",
            *self.args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=2**26,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            report = await self.report()
            if report["connected"] == self.count and report["states"] >= self.states_expected:
                return self
            await asyncio.sleep(0.5)
        raise RuntimeError(f"Node clients did not all connect: {report}")

    async def report(self) -> dict[str, Any]:
        assert self.process and self.process.stdin and self.process.stdout
        self.process.stdin.write(b"report\n")
        await self.process.stdin.drain()
        return json.loads(await self.process.stdout.readline())

    async def watch(self, marker: float, hosts: int) -> None:
        """From now on, each client notes when it holds ``hosts`` hosts whose cpuLoad is ``marker``."""
        assert self.process and self.process.stdin and self.process.stdout
        self.process.stdin.write(f"watch {marker!r} {hosts}\n".encode())
        await self.process.stdin.drain()
        await self.process.stdout.readline()

    async def __aexit__(self, *_: object) -> None:
        assert self.process and self.process.stdin
        self.process.stdin.write(b"quit\n")
        await self.process.stdin.drain()
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


class NodeClientGroups:
    """``count`` official clients in ``processes`` Node processes, read as one ``NodeClients``.

    Dashboards are a browser each; 200 sockets in one Node thread made that
    thread the bottleneck of a mass change (every client parses every delta)
    and, on a loaded machine, missed the server's pings while it parsed 200
    starting states.
    """

    def __init__(self, url: str, count: int, probe: str, *, processes: int, fields: bool = False) -> None:
        sizes = [count // processes + (i < count % processes) for i in range(processes)]
        self.groups = [NodeClients(url, size, probe, fields=fields) for size in sizes if size]
        self.count = count

    async def __aenter__(self) -> NodeClientGroups:
        # One group at a time: each waits for its clients' starting states.
        for group in self.groups:
            await group.__aenter__()
        return self

    async def report(self) -> dict[str, Any]:
        reports = [await group.report() for group in self.groups]
        merged: dict[str, Any] = {k: sum(r[k] for r in reports) for k in ("connected", "states", "resyncs", "deltas")}
        merged["ignored"] = sum(r["ignored"] for r in reports)
        merged["cpuMs"] = sum(r["cpuMs"] for r in reports)
        merged["reached"] = {}
        merged["seen"] = {}
        for r in reports:
            for key in ("reached", "seen"):
                for marker, times in r[key].items():
                    merged[key].setdefault(marker, []).extend(times)
        return merged

    async def watch(self, marker: float, hosts: int) -> None:
        for group in self.groups:
            await group.watch(marker, hosts)

    async def __aexit__(self, *exc: object) -> None:
        for group in self.groups:
            await group.__aexit__(*exc)


def marker_of(n: int) -> float:
    """A cpu value that names probe ``n`` (as JSON and as JavaScript print it alike)."""
    return round(11 + n / 100 + random.random() / 1e3, 6)


async def probe_latencies(
    clients: NodeClients, probes: int, fire: Callable[[float], Any], spacing: tuple[float, float]
) -> tuple[list[float], int, dict[str, Any]]:
    """Fire ``probes`` changes ``spacing`` apart (uniformly drawn); latency of each at each client, in seconds."""
    await clients.report()  # forget what came before
    fired: dict[str, float] = {}
    posted: list[float] = []
    for n in range(probes):
        marker = marker_of(n)
        fired[repr(marker)] = t0 = time.time() * 1000
        await fire(marker)
        posted.append(time.time() * 1000 - t0)
        await asyncio.sleep(random.uniform(*spacing))
    await asyncio.sleep(1.5)
    report = await clients.report()
    latencies: list[float] = []
    missing = 0
    for marker, t0 in fired.items():
        arrivals = report["seen"].get(marker, [])
        latencies += [(at - t0) / 1000 for at in arrivals]
        missing += clients.count - len(arrivals)
    if DEBUG:  # LIVE_SHAPES_DEBUG=1: what each probe took to post and to arrive first
        first = {k: min(report["seen"].get(k, [float("inf")])) - t0 for k, t0 in fired.items()}
        print({k: v for k, v in report.items() if k != "seen"}, "posted ms", sorted(round(p) for p in posted))
        print("first arrival ms by probe", [round(v) if v != float("inf") else None for v in first.values()])
    return latencies, missing, report


async def figure_delta_latency(
    record: Record,
    server: Server,
    bare: Server,
    probe: Agent,
    churn: Agent,
    *,
    clients_count: int = 200,
    probes: int = 40,
    runs: int = 3,
) -> None:
    """Delta latency with official clients under a steady trickle of changes, vs a bare broadcast of the delta."""
    if not NodeClients.available():
        record(
            "7. Delta latency, official clients", "skipped: no node or no bench/node/node_modules", "-", "-", "-", None
        )
        return
    spacing = (0.3, 0.9)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        state = orjson.loads(await (await http.get(f"{server.url}/api/twin/state")).read())
        hosts = len(state["hosts"])

        async def post(agent: Agent, cpu: float) -> None:
            body, headers = agent.signed([sample(agent.hostname, datetime.now(UTC), cpu=cpu)])
            async with http.post(f"{server.url}/api/metrics/batch", data=body, headers=headers) as response:
                assert response.status == 202, await response.text()

        stop = asyncio.Event()

        async def trickle() -> None:
            # Another host changes 4 times a second: pushes go out at every slot.
            while not stop.is_set():
                await post(churn, random.uniform(50, 99))
                await asyncio.sleep(0.25)

        runs_twin: list[tuple[float, float, int]] = []
        async with NodeClients(server.url, clients_count, probe.hostname) as clients:
            churning = asyncio.create_task(trickle())
            await asyncio.sleep(1)
            for _ in range(runs):
                latencies, missing, _ = await probe_latencies(clients, probes, lambda m: post(probe, m), spacing)
                runs_twin.append((pct(latencies, 0.5), pct(latencies, 0.99), missing))
            stop.set()
            await churning

        # Floor: the same delta (the probe host's document, its cpu the marker) broadcast by bare python-socketio.
        host = next(h for h in state["hosts"] if h["hostname"] == probe.hostname)
        delta = {
            "type": "twin-delta",
            "twinId": state["twinId"],
            "version": 2,
            "baseVersion": 1,
            "generatedAt": state["generatedAt"],
            "hosts": [host],
            "removedHosts": [],
            "links": [],
            "removedLinks": [],
        }

        async def broadcast(marker: float) -> None:
            host["metrics"]["cpuLoad"] = marker
            async with http.post(f"{bare.url}/broadcast", data=orjson.dumps(delta)) as response:
                assert response.status == 200

        runs_bare: list[tuple[float, float, int]] = []
        async with NodeClients(bare.url, clients_count, probe.hostname, full=True) as clients:
            for _ in range(runs):
                latencies, missing, _ = await probe_latencies(clients, probes, broadcast, spacing)
                runs_bare.append((pct(latencies, 0.5), pct(latencies, 0.99), missing))

    def summary(measured: list[tuple[float, float, int]]) -> str:
        return "; ".join(f"p50 {p50 * 1000:.0f} p99 {p99 * 1000:.0f} ms" for p50, p99, _ in measured)

    lost = sum(m for _, _, m in runs_twin)
    record(
        f"7. Delta latency, {clients_count} official clients (socket.io-client 4.8, Node), {hosts:,} hosts, "
        "another host changing 4 times a second",
        f"{runs} runs of {probes} changes: {summary(runs_twin)}; {lost} deliveries missed",
        f"bare python-socketio broadcast of the same delta: {summary(runs_bare)}",
        f"worst p99 {max(p99 for _, p99, _ in runs_twin) / max(p99 for _, p99, _ in runs_bare):.1f}x the bare worst",
        "p99 <= 250 ms in every run",
        all(p99 <= 0.25 for _, p99, _ in runs_twin) and lost == 0,
    )


# --------------------------------------------------------------------------- snapshot


def figure_snapshot_rounds(record: Record, *, rounds: int = 5, per_round: int = 11) -> None:
    """Snapshot at the current fleet: build + encode against the SELECTs + ``orjson.dumps``, round by round."""
    from hosts.selectors import link_rows  # noqa: F401  (the same modules warm as the floor's)
    from metrics.selectors import host_rows
    from twin.snapshot import snapshot_build

    with CaptureQueriesContext(connection) as ctx:
        document = snapshot_build()
    queries = len(ctx.captured_queries)

    def floor() -> None:
        host_rows()
        with connection.cursor() as cursor:
            cursor.execute("SELECT source_id, target_id, capacity_gbps FROM hosts_link")
            cursor.fetchall()
        orjson.dumps(document)

    def measured() -> None:
        orjson.dumps(snapshot_build())

    for _ in range(3):
        measured()
        floor()
    ratios: list[float] = []
    medians: list[tuple[float, float]] = []
    for _ in range(rounds):
        m: list[float] = []
        f: list[float] = []
        for _ in range(per_round):
            t0 = time.perf_counter()
            measured()
            m.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            floor()
            f.append(time.perf_counter() - t0)
        medians.append((statistics.median(m), statistics.median(f)))
        ratios.append(medians[-1][0] / medians[-1][1])
    record(
        f"8. Snapshot in rounds, {len(document['hosts']):,} hosts",
        "build+encode p50 by round: " + ", ".join(f"{m * 1000:.0f}" for m, _ in medians) + f" ms; {queries} queries",
        "SELECTs + orjson.dumps p50 by round: " + ", ".join(f"{f * 1000:.0f}" for _, f in medians) + " ms",
        ", ".join(f"{r:.2f}x" for r in ratios),
        "<= 1.5x in every round, <= 2 queries",
        max(ratios) <= 1.5 and queries <= 2,
    )


# --------------------------------------------------------------------------- everything changes


DELTA_VERSIONS = re.compile(r'"version":(\d+),"baseVersion":(\d+|null)')


class ResyncingClient(RawSocketIOClient):
    """A raw client that, like the dashboard, emits ``resync`` on a delta that does not follow its version."""

    def __init__(self) -> None:
        super().__init__()
        self.version: int | None = None
        self.resyncs = 0

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            data = msg.data
            if data == "2":
                await self.ws.send_str("3")
                continue
            self.bytes += len(data)
            if data.startswith('42/digital-twin,["twin-state"'):
                self.states += 1
                self.state_times.append(time.perf_counter())
                # The version is near the end of a state; parse it from the tail only.
                tail = data[-200:]
                at = tail.rfind('"version":')
                self.version = int(tail[at + 10 :].split(",")[0].rstrip("}]")) if at >= 0 else None
            elif data.startswith('42/digital-twin,["twin-delta"'):
                self.deltas += 1
                self.delta_bytes += len(data)
                versions = DELTA_VERSIONS.search(data, 0, 300)
                assert versions is not None, data[:300]
                version, base = int(versions[1]), versions[2]
                if self.version is None:
                    continue  # waiting for a state
                if base != str(self.version):
                    self.version = None
                    self.resyncs += 1
                    await self.ws.send_str('42/digital-twin,["resync"]')
                else:
                    self.version = version


async def figure_everything_changes(record: Record, server: Server, *, clients_count: int = 200) -> None:
    """A change touching every host, with ``clients_count - 1`` delta clients and one full client connected."""
    from metrics.models import LatestMetrics

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        full = await connect_clients(http, server.url, 1)
        delta: list[ResyncingClient] = [ResyncingClient() for _ in range(clients_count - 1)]
        for start in range(0, len(delta), 20):
            await asyncio.gather(*(c.connect(http, server.url, True) for c in delta[start : start + 20]))
        settle = time.monotonic() + 180
        while any(c.states == 0 for c in full + delta) and time.monotonic() < settle:
            await asyncio.sleep(0.5)
        await asyncio.sleep(2)
        connected_rss = server.rss_mb()
        server.peak_rss_reset()
        states_before = [c.states for c in delta]
        deltas_before = [c.deltas for c in delta]
        full_before = full[0].states
        t0 = time.perf_counter()
        LatestMetrics.objects.update(last_seen=datetime.now(UTC))
        # Every delta client holds the new twin again: it got a delta, or a resync signal and then a state.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = [
                c.version is not None and (c.states > s or c.deltas > d)
                for c, s, d in zip(delta, states_before, deltas_before, strict=True)
            ]
            if all(done) and full[0].states > full_before:
                break
            await asyncio.sleep(0.2)
        settled = time.perf_counter() - t0
        await asyncio.sleep(2)
        peak = server.peak_rss_mb()
        resynced = sum(1 for c in delta if c.resyncs)
        in_sync = sum(1 for c in delta if c.version is not None)
        for c in full + delta:
            await c.close()
    record(
        f"9. A change touching every host, {clients_count - 1} delta clients and 1 full client",
        f"peak RSS {peak:.0f} MB; {resynced} clients resynced, {in_sync} in sync {settled:.1f} s after the change",
        f"{connected_rss:.0f} MB with every client connected and idle",
        "-",
        "<= 400 MB, every client back in sync",
        peak <= 400 and in_sync == clients_count - 1,
    )


# --------------------------------------------------------------------------- a mass change, fields form


MASS_BATCH = 500
MASS_SENDERS = 4
# The twin in open mode: one batch may name 500 hosts, as a collector's does.
MASS_ENV = {
    "TWIN_AGENT_AUTH": "open",
    "TWIN_PUBLIC_READ": "true",
    "DEBUG": "false",
    "TWIN_INGEST_RATE_PER_MINUTE": "1000000",
    "TWIN_STALE_AFTER_SECONDS": "600",
    "TWIN_OFFLINE_AFTER_SECONDS": "1800",
}


async def mass_change_settle(
    clients: NodeClients | NodeClientGroups, server: Server, hostnames: list[str], *, timeout: float = 60
) -> tuple[list[float], float, int, float, dict[str, Any]]:
    """Change ``hostnames`` (batches of 500, four senders); each client's seconds until it holds them all.

    Returns the latencies (from the first batch posted), the seconds until
    the last batch was answered (stored), the clients that never held them
    all within ``timeout``, the server's peak RSS meanwhile and the clients'
    counters.
    """
    marker = marker_of(random.randrange(1000))
    await clients.report()  # forget what came before
    before = await clients.report()
    await clients.watch(marker, len(hostnames))
    server.peak_rss_reset()
    now = datetime.now(UTC)
    bodies = [
        orjson.dumps({"samples": [sample(name, now, cpu=marker) for name in hostnames[start : start + MASS_BATCH]]})
        for start in range(0, len(hostnames), MASS_BATCH)
    ]
    queue = list(reversed(bodies))
    t0 = time.time() * 1000

    async def sender(http: aiohttp.ClientSession) -> None:
        while queue:
            async with http.post(
                f"{server.url}/api/metrics/batch", data=queue.pop(), headers={"Content-Type": "application/json"}
            ) as response:
                assert response.status == 202, await response.text()

    reached: list[float] = []
    cpu_ms = 0.0
    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(sender(http) for _ in range(MASS_SENDERS)))
    stored = time.time() - t0 / 1000
    if DEBUG:
        print(f"posted at {t0:.0f}, stored {stored:.2f} s later")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(reached) < clients.count:
        await asyncio.sleep(0.25)
        report = await clients.report()
        reached += report["reached"].get(repr(marker), [])
        cpu_ms += report["cpuMs"]
    peak = server.peak_rss_mb()
    if DEBUG:  # the feed's builds meanwhile (twin_snapshot_build_seconds, reader "live")
        async with aiohttp.ClientSession() as http, http.get(f"{server.url}/metrics") as response:
            text = await response.text()
        print([line for line in text.splitlines() if 'reader="live"' in line and ("_sum" in line or "_count" in line)])
    counters = {k: report[k] - before[k] for k in ("states", "resyncs", "deltas")}
    counters["connected"] = report["connected"]
    counters["node_cpu"] = cpu_ms / 1000
    return [(at - t0) / 1000 for at in reached], stored, clients.count - len(reached), peak, counters


async def figure_mass_change(
    record: Record, *, clients_count: int = 200, changed: int = 2000, processes: int = 4
) -> None:
    """A change to ``changed`` hosts, then to every host, with fields-form delta clients (official, Node)."""
    from hosts.models import Host

    if not NodeClients.available():
        record(
            "10. A mass change, fields deltas", "skipped: no node or no bench/node/node_modules", "-", "-", "-", None
        )
        return
    from bench.harness import daphne

    fleet = sorted(Host.objects.filter(hostname__startswith="node-").values_list("hostname", flat=True))
    with daphne("twinsite.asgi:application", **MASS_ENV) as server:
        async with NodeClientGroups(server.url, clients_count, fleet[0], processes=processes, fields=True) as clients:
            await asyncio.sleep(2)
            idle = server.rss_mb()
            for hostnames in (fleet[:changed], fleet):
                latencies, stored, missing, peak, counters = await mass_change_settle(clients, server, hostnames)
                p50, p99 = (pct(latencies, q) if latencies else float("inf") for q in (0.5, 0.99))
                after_stored = p99 - stored
                batches = -(-len(hostnames) // MASS_BATCH)
                record(
                    f"10. A mass change to {len(hostnames):,} of {len(fleet):,} hosts ({batches} batches of "
                    f"{MASS_BATCH}), {clients_count} official clients (Node, {processes} processes) on fields deltas",
                    f"every client holds it {p50:.2f} s (p50), {p99:.2f} s (p99) after the first batch was "
                    f"posted, {after_stored:.2f} s (p99) after the last was stored ({stored:.2f} s); "
                    f"peak RSS {peak:.0f} MB; {missing} clients never; {counters['resyncs']} resyncs, "
                    f"{counters['deltas']} deltas, {counters['states']} states received, "
                    f"{counters['connected']} clients still connected; the clients' {processes} Node processes used "
                    f"{counters['node_cpu']:.1f} s of CPU until the last arrival",
                    f"{idle:.0f} MB with every client connected and idle; 8.5-9.7 s p99 (2,000 hosts) and "
                    "10.7 s (every host) with whole deltas and resync signals",
                    "-",
                    "p99 <= 2 s, peak RSS <= 400 MB",
                    p99 <= 2 and peak <= 400 and missing == 0,
                )


# --------------------------------------------------------------------------- alone


async def main(quick: bool, only: set[str]) -> None:
    from django.core.management import call_command

    import bench.run as run
    from bench.fleet import fleet_seed
    from bench.harness import daphne, register
    from hosts.models import Host
    from hosts.services import enrollment_key_create

    call_command("migrate", verbosity=0)
    _, key = enrollment_key_create(name="bench")
    env = {
        "TWIN_AGENT_AUTH": "signed",
        "TWIN_PUBLIC_READ": "true",
        "DEBUG": "false",
        "TWIN_STALE_AFTER_SECONDS": "600",
        "TWIN_OFFLINE_AFTER_SECONDS": "1800",
    }
    with daphne("twinsite.asgi:application", **env) as server, daphne("bench.bare_socketio:application") as bare:
        async with aiohttp.ClientSession() as http:
            probe = await register(http, server.url, key, "bench-probe")
            churn = await register(http, server.url, key, "bench-churn")
        if "latency" in only:
            fleet_seed(hosts=1000, prefix="k")
            run.database_settle()
            await figure_delta_latency(
                run.record, server, bare, probe, churn, clients_count=50 if quick else 200, runs=1 if quick else 3
            )
            Host.objects.filter(hostname__startswith="k-").delete()
        if only & {"snapshot", "memory", "mass"}:
            fleet_seed(hosts=10_000, prefix="node")
            run.database_settle()
        if "snapshot" in only:
            figure_snapshot_rounds(run.record, rounds=2 if quick else 5)
        if "memory" in only:
            await figure_everything_changes(run.record, server, clients_count=50 if quick else 200)
        if "mass" in only:
            await figure_mass_change(run.record, clients_count=50 if quick else 200)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="latency,snapshot,memory,mass")
    args = parser.parse_args()
    asyncio.run(main(args.quick, set(args.only.split(","))))
