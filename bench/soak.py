"""Soak test: a simulated fleet at a 10 s interval through nginx and two processes, dashboards connected.

    make soak                                         # 30 minutes, 800 hosts, 50 dashboards
    .venv/bin/python -m bench.soak --quick            # 2 minutes, 200 hosts, 10 dashboards: to try it
    .venv/bin/python -m bench.soak --minutes 5 --hosts 1000

Loopback only, bounded in time (at most 60 minutes), stops by itself. Runs the
production topology without containers: two daphne processes sharing the Redis
channel layer (``SOAK_REDIS_URL``, default the local Redis) behind the
project's own nginx configuration (``tests/ops/nginx.py`` renders and starts
it, as the topology tests do). Every host is enrolled through nginx and posts
a signed one-sample batch every ``--interval`` seconds; half the dashboards
take the full state, half subscribe to deltas. nginx is sticky by client
address, so the agents and dashboards come from loopback addresses
(127.0.0.x) chosen so that it splits them evenly between the two processes.

A probe host changes every 10 s; the time until each dashboard has that value
is the push latency. Every minute it records each process's RSS, the ingest
p99 (request to 202, through nginx), the push p99, and what was acknowledged
against what the database holds. At the end: every acknowledged sample stored
exactly once (counted in the database by host and timestamp), RSS of the last
third of the run against the first, p99 of the last third against the first.
Writes ``bench/soak-results.md`` and ``bench/soak.png`` (matplotlib, Agg).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/twin_soak")

import aiohttp
import orjson
import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Count

import bench.django_setup  # noqa: F401  (first: a fresh database, Django set up)
from bench.harness import ROOT, Agent, RawSocketIOClient, Server, daphne, pct, register, sample
from bench.scaling import addresses_balanced
from hosts.services import enrollment_key_create
from metrics.models import Sample
from tests.ops.nginx import Proxy, nginx_binary, nginx_start, process_stop

# The largest fleet this machine carries: two processes behind nginx took about 97 signed
# one-sample batches a second on its two cores (bench/scaling-results.md; 168 for one process
# alone with no proxy and no Redis, bench/results.md), and a short soak at 1,000 hosts (100 a
# second) saturated them (docs/reliability.md). 800 hosts at 10 s are 80 a second, the rest
# left for fifty dashboards' pushes, nginx, Redis and this client on the same cores.
HOSTS = 800
INTERVAL = 10.0
DASHBOARDS = 50  # half full state, half deltas
PROBE_EVERY = 10.0
PROBE_WAIT = 8.0  # a dashboard that has not seen the probe by then counts as missed
AGENT_ADDRESSES = 24  # loopback source addresses the agents come from (nginx hashes on them)
MINUTE = 60.0
RSS_FLAT = 0.10
P99_STABLE = 1.5  # the last third's median p99 within 1.5x the first third's


@dataclass
class Minute:
    t: float
    rss: list[float]
    acknowledged: int
    stored: int
    batches: int
    ingest_p99: float
    push_p99: float
    push_missed: int
    refused: int
    states: float
    deltas: float


@dataclass
class Run:
    """What the clients saw: acknowledged samples by host and timestamp, latencies of the current minute."""

    acknowledged: set[tuple[str, datetime]] = field(default_factory=set)
    refused: Counter = field(default_factory=Counter)
    ingest: list[float] = field(default_factory=list)
    push: list[float] = field(default_factory=list)
    push_missed: int = 0
    batches: int = 0
    probes: int = 0


def session(address: str) -> aiohttp.ClientSession:
    """Requests from one loopback address: nginx sends them all to the same process."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, local_addr=(address, 0)),
        timeout=aiohttp.ClientTimeout(total=30),
    )


async def post(http: aiohttp.ClientSession, url: str, agent: Agent, at: datetime, cpu: float) -> int:
    body, headers = agent.signed([sample(agent.hostname, at, cpu=cpu)])
    async with http.post(f"{url}/api/metrics/batch", data=body, headers=headers) as response:
        await response.read()
        return response.status


def stored_count() -> int:
    return Sample.objects.count()


def stored_check(acknowledged: set[tuple[str, datetime]]) -> dict[str, int]:
    """Every acknowledged sample in the database once: counted by host and timestamp."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM (SELECT 1 FROM metrics_sample GROUP BY host_id, timestamp HAVING count(*) > 1) d"
        )
        doubled = cursor.fetchone()[0]
    stored = set(Sample.objects.values_list("host__hostname", "timestamp"))
    per_host = Sample.objects.values("host_id").annotate(n=Count("*"))
    return {
        "rows": Sample.objects.count(),
        "distinct": len(stored),
        "doubled": doubled,
        "lost": len(acknowledged - stored),
        "unacknowledged": len(stored - acknowledged),
        "hosts": len(per_host),
    }


async def soak(*, minutes: float, hosts: int, interval: float, dashboards: int, label: str) -> list[str]:
    call_command("migrate", verbosity=0)
    _, key = enrollment_key_create(name="soak")
    redis = os.environ.get("SOAK_REDIS_URL", "redis://127.0.0.1:6379/0")
    env = {
        "TWIN_AGENT_AUTH": "signed",
        "TWIN_PUBLIC_READ": "true",
        "REDIS_URL": redis,
        "CHANNEL_LAYER_PREFIX": f"soak-{int(time.time())}",
    }
    run = Run()
    minutes_seen: list[Minute] = []
    db = ThreadPoolExecutor(max_workers=1)  # the ORM off the event loop, on one connection
    loop = asyncio.get_running_loop()
    with (
        tempfile.TemporaryDirectory(prefix="twin-soak-") as scratch,
        daphne("twinsite.asgi:application", log="bench-soak-1", **env) as one,
        daphne("twinsite.asgi:application", log="bench-soak-2", **env) as two,
    ):
        servers: list[Server] = [one, two]
        proxy: Proxy = nginx_start(Path(scratch) / "nginx", servers, max_body_bytes=262144, worker_connections=4096)
        # Addresses nginx's hash splits evenly between the processes, interleaved: agents first.
        wanted = AGENT_ADDRESSES + dashboards
        addresses = await addresses_balanced(proxy, servers, wanted + wanted % 2)
        sessions = [session(a) for a in addresses[:AGENT_ADDRESSES]]
        screens = [session(a) for a in addresses[AGENT_ADDRESSES:wanted]]
        try:
            url = proxy.url
            agents: list[Agent] = []
            for start in range(0, hosts, 50):
                names = range(start, min(hosts, start + 50))
                agents += await asyncio.gather(
                    *(register(sessions[i % AGENT_ADDRESSES], url, key, f"soak-{i:05d}") for i in names)
                )
            # Its own host, so no agent's batch overwrites the probe's value before the push.
            probe = await register(sessions[0], url, key, "soak-probe")
            full = [RawSocketIOClient() for _ in range(dashboards - dashboards // 2)]
            delta = [RawSocketIOClient() for _ in range(dashboards // 2)]
            clients = full + delta
            for start in range(0, dashboards, 10):
                await asyncio.gather(
                    *(
                        c.connect(screens[start + n], url, delta=c in delta)
                        for n, c in enumerate(clients[start : start + 10])
                    )
                )
            began = time.monotonic()
            deadline = began + minutes * MINUTE

            async def agent_loop(i: int) -> None:
                agent, http = agents[i], sessions[i % AGENT_ADDRESSES]
                await asyncio.sleep(interval * i / hosts)  # spread the fleet over the interval
                due = time.monotonic()
                while due < deadline:
                    at = datetime.now(UTC)
                    started = time.perf_counter()
                    try:
                        status = await post(http, url, agent, at, float(i % 100))
                    except (aiohttp.ClientError, TimeoutError) as error:
                        run.refused[type(error).__name__] += 1
                    else:
                        run.batches += 1
                        if status == 202:
                            run.acknowledged.add((agent.hostname, at))
                        else:
                            run.refused[status] += 1
                    run.ingest.append(time.perf_counter() - started)
                    due += interval
                    await asyncio.sleep(max(0.0, due - time.monotonic()))

            async def prober() -> None:
                n = 0
                while time.monotonic() + PROBE_EVERY < deadline:
                    await asyncio.sleep(PROBE_EVERY)
                    n += 1
                    # A cpu_load no agent sends, with more decimals than any timestamp has.
                    value = 77 + n / 1000 + 0.0000001
                    marker = orjson.dumps(value).decode()
                    for c in clients:
                        c.watch[marker] = 0.0
                    at = datetime.now(UTC)
                    sent = time.perf_counter()
                    if await post(sessions[0], url, probe, at, value) == 202:
                        run.acknowledged.add((probe.hostname, at))
                        run.probes += 1
                    # From its 202: an overloaded process answers late, and the dashboards had until then too.
                    until = time.perf_counter() + PROBE_WAIT
                    while time.perf_counter() < until and not all(c.watch[marker] for c in clients):
                        await asyncio.sleep(0.05)
                    for c in clients:
                        seen = c.watch.pop(marker)
                        if seen:
                            run.push.append(seen - sent)
                        else:
                            run.push_missed += 1
                            run.push.append(float("inf"))  # missed: later than any latency it could have

            async def recorder() -> None:
                n = 0
                while (n + 1) * MINUTE <= minutes * MINUTE + 1:
                    n += 1
                    await asyncio.sleep(max(0.0, began + n * MINUTE - time.monotonic()))
                    acknowledged = len(run.acknowledged)
                    stored = await loop.run_in_executor(db, stored_count)
                    minutes_seen.append(
                        Minute(
                            t=time.monotonic() - began,
                            rss=[s.rss_mb() for s in servers],
                            acknowledged=acknowledged,
                            stored=stored,
                            batches=run.batches,
                            ingest_p99=pct(run.ingest, 0.99) * 1000 if run.ingest else float("nan"),
                            push_p99=pct(run.push, 0.99) * 1000 if run.push else float("nan"),
                            push_missed=run.push_missed,
                            refused=sum(run.refused.values()),
                            states=statistics.mean(c.states for c in full) if full else 0.0,
                            deltas=statistics.mean(c.deltas for c in delta) if delta else 0.0,
                        )
                    )
                    m = minutes_seen[-1]
                    print(
                        f"minute {n}: rss {'/'.join(f'{r:.0f}' for r in m.rss)} MB, ingest p99 {m.ingest_p99:.0f} ms,"
                        f" push p99 {m.push_p99:.0f} ms, acknowledged {m.acknowledged}, stored {m.stored}",
                        flush=True,
                    )
                    run.ingest.clear()
                    run.push.clear()
                    run.push_missed = 0

            await asyncio.gather(recorder(), prober(), *(agent_loop(i) for i in range(hosts)))
            await asyncio.sleep(1)
            peaks = [s.peak_rss_mb() for s in servers]
            for c in clients:
                await c.close()
            upstreams = Counter(
                line["upstream"].rsplit(":", 1)[-1]
                for line in proxy.lines()
                if line["path"] == "/api/metrics/batch" and line["status"] == 202
            )
        finally:
            for s in sessions + screens:
                await s.close()
            process_stop(proxy.process)
    check = await loop.run_in_executor(db, stored_check, run.acknowledged)
    db.shutdown()
    lines = results_lines(
        minutes_seen,
        run=run,
        check=check,
        peaks=peaks,
        split=[upstreams[s.url.rsplit(":", 1)[-1]] for s in servers],
        hosts=hosts,
        interval=interval,
        dashboards=dashboards,
        minutes=minutes,
        label=label,
    )
    (ROOT / "bench" / "soak-results.md").write_text("\n".join(lines))
    plot(minutes_seen, ROOT / "bench" / "soak.png", title=f"{hosts} hosts at {interval:g} s, {dashboards} dashboards")
    return lines


def thirds(values: list[float]) -> tuple[float, float]:
    """The median of the first third of a run and of the last (at least one value each)."""
    third = max(1, len(values) // 3)
    return statistics.median(values[:third]), statistics.median(values[-third:])


def results_lines(
    minutes_seen: list[Minute],
    *,
    run: Run,
    check: dict[str, int],
    peaks: list[float],
    split: list[int],
    hosts: int,
    interval: float,
    dashboards: int,
    minutes: float,
    label: str,
) -> list[str]:
    lines = [
        "# Soak test results",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `python -m bench.soak --minutes {minutes:g} --hosts {hosts}"
        f" --interval {interval:g} --dashboards {dashboards}` on {platform.node()}: {os.cpu_count()} cores; "
        f"two daphne processes sharing the Redis channel layer behind the project's nginx configuration, "
        f"PostgreSQL; {hosts} hosts posting a signed one-sample batch every {interval:g} s "
        f"({hosts / interval:.0f} a second), {dashboards - dashboards // 2} full-state and {dashboards // 2} "
        "delta dashboards (raw Socket.IO websocket clients through nginx), a probe host changed every "
        f"{PROBE_EVERY:g} s.",
        "",
        *([label, ""] if label else []),
        "| minute | RSS process 1 (MB) | RSS process 2 (MB) | batches/s | ingest p99 (ms) | push p99 (ms) "
        "| push missed | acknowledged | stored | refused | states per full client | deltas per delta client |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    previous = 0
    for n, m in enumerate(minutes_seen, 1):
        lines.append(
            f"| {n} | {m.rss[0]:.0f} | {m.rss[1]:.0f} | {(m.batches - previous) / MINUTE:.0f} | {m.ingest_p99:.0f} "
            f"| {m.push_p99:.0f} | {m.push_missed} | {m.acknowledged} | {m.stored} | {m.refused} | {m.states:.0f} "
            f"| {m.deltas:.0f} |"
        )
        previous = m.batches
    exact = check["lost"] == 0 and check["doubled"] == 0 and check["rows"] == check["distinct"]
    lines += ["", f"- Batches taken by each process (nginx's access log, 202s): {split[0]} and {split[1]}."]
    lines.append(
        f"- Acknowledged {len(run.acknowledged)} samples ({run.probes} of them probes); the database holds "
        f"{check['rows']} rows for {check['hosts']} hosts, {check['distinct']} distinct (host, timestamp): "
        f"{check['lost']} acknowledged samples missing, {check['doubled']} (host, timestamp) stored twice, "
        f"{check['unacknowledged']} stored without an acknowledgement (a reply the client gave up on) — "
        f"**{'every acknowledged sample stored exactly once' if exact else 'MISMATCH'}**."
    )
    lines.append(f"- Refused or failed: {dict(run.refused) or 'none'}.")
    if minutes_seen:
        for p in range(2):
            first, last = thirds([m.rss[p] for m in minutes_seen])
            growth = (last - first) / first
            lines.append(
                f"- Process {p + 1} RSS: {first:.0f} MB (first third, median) to {last:.0f} MB (last third): "
                f"{growth:+.1%}, peak {peaks[p]:.0f} MB — "
                f"**{'flat within 10 %' if abs(growth) <= RSS_FLAT else 'not flat'}**."
            )
        for name, values in (
            ("Ingest p99", [m.ingest_p99 for m in minutes_seen]),
            ("Push p99", [m.push_p99 for m in minutes_seen if m.push_p99 == m.push_p99]),
        ):
            if len(values) < 3:
                lines.append(f"- {name}: too few minutes to say whether it is stable.")
                continue
            first, last = thirds(values)
            # A minute whose p99 is a missed probe (infinite) in the last third is not stable.
            stable = math.isfinite(last) and all(map(math.isfinite, values[-max(1, len(values) // 3) :]))
            stable = stable and last <= first * P99_STABLE
            lines.append(
                f"- {name}: {first:.0f} ms (first third, median of the minutes' p99) to {last:.0f} ms (last third), "
                f"range {min(values):.0f}-{max(values):.0f} ms — "
                f"**{'stable' if stable else 'growing'}** (stable: the last third within {P99_STABLE:g}x the first)."
            )
        missed = sum(m.push_missed for m in minutes_seen)
        lines.append(f"- Probe changes a dashboard had not seen within {PROBE_WAIT:g} s: {missed}.")
    lines += [
        "- Per minute: `bench/soak.png`. The issue's run is 30 minutes (`make soak`) on a quiet machine; "
        "a short run shows the harness works, not that nothing drifts over half an hour.",
        "",
    ]
    return lines


def plot(minutes_seen: list[Minute], path: Path, *, title: str) -> None:
    """RSS, ingest p99 and push p99 per minute, one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    x = list(range(1, len(minutes_seen) + 1))
    figure, (memory, latency) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for p in range(2):
        memory.plot(x, [m.rss[p] for m in minutes_seen], marker="o", label=f"process {p + 1}")
    memory.set_ylabel("RSS (MB)")
    memory.set_ylim(bottom=0)
    memory.legend()
    memory.set_title(title)
    latency.plot(x, [m.ingest_p99 for m in minutes_seen], marker="o", label="ingest p99 (request to 202)")
    latency.plot(
        x,
        [m.push_p99 if math.isfinite(m.push_p99) else math.nan for m in minutes_seen],
        marker="s",
        label="push p99 (change to every dashboard)",
    )
    latency.set_ylabel("ms")
    latency.set_xlabel("minute")
    latency.set_ylim(bottom=0)
    latency.xaxis.set_major_locator(MaxNLocator(integer=True))
    latency.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0, help="how long to soak (bounded: at most 60)")
    parser.add_argument("--hosts", type=int, default=HOSTS, help=f"simulated hosts (default {HOSTS}, at most 5000)")
    parser.add_argument("--interval", type=float, default=INTERVAL, help="seconds between a host's batches")
    parser.add_argument("--dashboards", type=int, default=DASHBOARDS, help="half full state, half deltas (2-100)")
    parser.add_argument("--quick", action="store_true", help="2 minutes, 200 hosts, 10 dashboards: to try it")
    parser.add_argument("--label", default="", help="a line for the results file (where and how it ran)")
    args = parser.parse_args(argv)
    if args.quick:
        args.minutes, args.hosts, args.dashboards = 2.0, 200, 10
    try:
        nginx_binary()
    except pytest.skip.Exception as missing:
        sys.exit(str(missing))
    return asyncio.run(
        soak(
            minutes=max(1.0, min(args.minutes, 60.0)),
            hosts=max(1, min(args.hosts, 5000)),
            interval=max(1.0, args.interval),
            dashboards=max(2, min(args.dashboards, 100)),
            label=args.label,
        )
    )


if __name__ == "__main__":
    print("\n".join(main()))
