"""Soak test: sustained signed ingest with dashboards connected, for a few minutes.

    make soak                                  # 180 s; or: .venv/bin/python -m bench.soak --seconds 60

Loopback only, bounded in time, stops by itself. Runs the twin with the Redis
channel layer (``SOAK_REDIS_URL``, default the local Redis), 40 agents posting
a signed one-sample batch every second each, 10 full-state and 10 delta
dashboards, and a probe every 10 s for the push latency. Every 10 s it records
the server's memory, what was acknowledged and what the dashboards received;
at the end it checks that every acknowledged sample is in the database.
Writes ``bench/soak-results.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import time
from datetime import UTC, datetime

os.environ.setdefault("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/twin_soak")

import aiohttp
import orjson
from django.core.management import call_command

import bench.django_setup  # noqa: F401  (first: a fresh database, Django set up)
from bench.harness import ROOT, RawSocketIOClient, connect_clients, daphne, pct, register, sample
from hosts.services import enrollment_key_create
from metrics.models import Sample

# 40 batches a second: below what one daphne process on this machine sustains
# with 20 dashboards (about 72; docs/reliability.md), so queues must stay flat.
AGENTS = 40
DASHBOARDS = 10  # of each kind


async def soak(seconds: float, agents_count: int = AGENTS) -> list[str]:
    call_command("migrate", verbosity=0)
    _, key = enrollment_key_create(name="soak")
    redis = os.environ.get("SOAK_REDIS_URL", "redis://127.0.0.1:6379/0")
    env = {
        "TWIN_AGENT_AUTH": "signed",
        "TWIN_PUBLIC_READ": "true",
        "REDIS_URL": redis,
        "CHANNEL_LAYER_PREFIX": f"soak-{int(time.time())}",
    }
    windows: list[dict[str, float]] = []
    with daphne("twinsite.asgi:application", **env) as server:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            agents = [await register(http, server.url, key, f"soak-{i:03d}") for i in range(agents_count)]
            # Its own host, so no agent's regular batch overwrites the probe's value before the push.
            probe = await register(http, server.url, key, "soak-probe")
            full = await connect_clients(http, server.url, DASHBOARDS)
            delta = await connect_clients(http, server.url, DASHBOARDS, delta=True)
            acknowledged = 0
            probes = 0
            failures: dict[int, int] = {}
            latencies: list[float] = []
            deadline = time.monotonic() + seconds

            async def agent_loop(i: int) -> None:
                nonlocal acknowledged
                agent = agents[i]
                await asyncio.sleep(i / agents_count)  # spread the agents over the second
                while time.monotonic() < deadline:
                    started = time.perf_counter()
                    body, headers = agent.signed([sample(agent.hostname, datetime.now(UTC), cpu=float(i % 100))])
                    async with http.post(f"{server.url}/api/metrics/batch", data=body, headers=headers) as response:
                        await response.read()
                        if response.status == 202:
                            acknowledged += 1
                        else:
                            failures[response.status] = failures.get(response.status, 0) + 1
                    latencies.append(time.perf_counter() - started)
                    await asyncio.sleep(max(0.0, 1.0 - (time.perf_counter() - started)))

            async def observer() -> None:
                nonlocal probes
                start = time.monotonic()
                n = 0
                while time.monotonic() < deadline:
                    await asyncio.sleep(10)
                    n += 1
                    # A cpu_load no agent sends, written as orjson writes it.
                    marker = orjson.dumps(round(50 + n / 1000 + 0.0005, 4)).decode()
                    clients: list[RawSocketIOClient] = full[:1]
                    for c in clients:
                        c.watch[marker] = 0.0
                    body, headers = probe.signed([sample(probe.hostname, datetime.now(UTC), cpu=float(marker))])
                    sent = time.perf_counter()
                    async with http.post(f"{server.url}/api/metrics/batch", data=body, headers=headers) as r:
                        await r.read()
                        probes += r.status == 202
                    await asyncio.sleep(2)
                    seen = clients[0].watch.pop(marker)
                    windows.append(
                        {
                            "t": time.monotonic() - start,
                            "rss": server.rss_mb(),
                            "acknowledged": acknowledged,
                            "p99": pct(latencies, 0.99) * 1000 if latencies else 0.0,
                            "push": (seen - sent) * 1000 if seen else float("nan"),
                            "states": statistics.mean(c.states for c in full),
                            "deltas": statistics.mean(c.deltas for c in delta),
                        }
                    )
                    latencies.clear()

            await asyncio.gather(observer(), *(agent_loop(i) for i in range(agents_count)))
            await asyncio.sleep(1)
            peak = server.peak_rss_mb()
            for c in full + delta:
                await c.close()
    stored = Sample.objects.count()
    lines = [
        "# Soak test results",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `bench/soak.py --seconds {seconds:g}` on {platform.node()}: "
        f"{os.cpu_count()} cores, one daphne process, PostgreSQL, Redis channel layer; {agents_count} agents posting a "
        f"signed one-sample batch every second each, {DASHBOARDS} full-state and {DASHBOARDS} delta dashboards.",
        "",
        "| t (s) | server RSS (MB) | acknowledged | batch p99 (ms) | probe push (ms) | states per full client "
        "| deltas per delta client |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for w in windows:
        lines.append(
            f"| {w['t']:.0f} | {w['rss']:.0f} | {w['acknowledged']:.0f} | {w['p99']:.0f} | {w['push']:.0f} "
            f"| {w['states']:.0f} | {w['deltas']:.0f} |"
        )
    third = len(windows) // 3
    growth = windows[-1]["rss"] - windows[third]["rss"] if windows else 0.0
    lines += [
        "",
        f"- Acknowledged {acknowledged} agent batches "
        f"and {probes} probes: {stored} samples in the database "
        f"({'every acknowledged sample stored, none twice' if stored == acknowledged + probes else 'MISMATCH'}).",
        f"- Refused: {failures or 'none'}.",
        f"- Server RSS from the first third to the end: {growth:+.0f} MB; peak {peak:.0f} MB.",
        "- Push latency of the probes stays flat when no queue grows.",
        "",
    ]
    (ROOT / "bench" / "soak-results.md").write_text("\n".join(lines))
    return lines


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=180.0, help="how long to soak (bounded: at most 900)")
    parser.add_argument("--agents", type=int, default=AGENTS, help="agents, one batch a second each (at most 200)")
    args = parser.parse_args()
    print("\n".join(asyncio.run(soak(min(args.seconds, 900.0), max(1, min(args.agents, 200))))))
