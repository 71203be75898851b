"""Figures of the shapes real fleets send (issue 16, items 1-3), each beside its floor in the same run.

- First contact: batches naming 500 new hosts each (10,000 hosts reporting for
  the first time) against the same hosts' next batches.
- Batches naming many hosts (a collector, here in open mode): 500 samples for
  500 different hosts against the database minimum for the twin's semantics,
  COPY of the history rows and an upsert of each host's latest row in one
  transaction.
- Agents per process: the twin's trivial endpoint and signed one-sample
  batches against a bare Django project (``bench.bare_django``: two
  middlewares, one JSON view) served by the same daphne invocation, measured
  with the same client.

Called by ``bench.run`` after its other figures (these add 10,000 hosts, which
would change the snapshot figures' fleet), or alone:

    .venv/bin/python -m bench.fleet_shapes [--quick]
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson
from django.db import transaction

import bench.django_setup  # noqa: F401  (first: a fresh database, Django set up; a no-op under bench.run)
from bench.harness import Agent, Server, daphne, register, run_for, sample
from hosts.models import Host, Rack
from metrics.fields import FIELD_NAMES
from metrics.models import Sample
from metrics.statements import LatestRow, latest_write, samples_insert

Record = Callable[[str, str, str, str, str, bool | None], None]

PER_BATCH = 500
SENDERS = 4
# The twin in open mode for the collector shapes: unsigned batches may name any host.
OPEN_ENV = {
    "TWIN_AGENT_AUTH": "open",
    "TWIN_PUBLIC_READ": "true",
    "DEBUG": "false",
    "TWIN_INGEST_RATE_PER_MINUTE": "1000000",
    "TWIN_STALE_AFTER_SECONDS": "600",
    "TWIN_OFFLINE_AFTER_SECONDS": "1800",
}


def _collector_sample(hostname: str, at: datetime, i: int) -> dict[str, Any]:
    """What a collector says about one host: its metrics, rack and position (what a new host gets placed by)."""
    return {
        **sample(hostname, at, i=i),
        "rack": f"fc-R{i // 40:04d}",
        "position": {"x": float(i % 40), "y": float(i // 40 % 10), "z": 0.0},
    }


async def _send_all(server: Server, bodies: list[bytes], senders: int) -> float:
    """Post the bodies from ``senders`` concurrent connections; return the seconds it took."""
    queue = list(reversed(bodies))

    async def sender(http: aiohttp.ClientSession) -> None:
        while queue:
            body = queue.pop()
            async with http.post(
                f"{server.url}/api/metrics/batch", data=body, headers={"Content-Type": "application/json"}
            ) as response:
                result = await response.json()
                assert response.status == 202 and result["accepted"] == PER_BATCH, result

    async with aiohttp.ClientSession() as http:
        t0 = time.perf_counter()
        await asyncio.gather(*(sender(http) for _ in range(senders)))
        return time.perf_counter() - t0


# The floor's values of the registry's fields (those a sample of ``bench.harness.sample`` carries; None for the rest).
_FLOOR_KNOWN = {"cpu_load": 42.5, "memory_used_percent": 63.2, "load_average": 1.72}
# A latest row's previous counters and throughput: none yet.
_FLOOR_PREVIOUS = (None,) * (len(LatestRow._fields) - 3 - len(FIELD_NAMES))


def _floor_metrics(i: int) -> list[Any]:
    counters = {"uptime_seconds": 7200 + i, "net_bytes_tx": i * 10**6, "net_bytes_rx": i * 2**21}
    return [_FLOOR_KNOWN.get(name, counters.get(name)) for name in FIELD_NAMES]


def _many_host_floor(host_ids: list[int], at: datetime, batches: int) -> float:
    """Rows a second for the database minimum: COPY 500 history rows + upsert 500 latest rows, one transaction each.

    The product's own statements (``metrics.statements``), without the rules
    around them: the upsert takes one array a column (``unnest``), twice as
    fast here as a ``VALUES`` list of 6,500 placeholders.
    """
    received = datetime.now(UTC)
    prepared = []
    for b in range(batches):
        ids = host_ids[b * PER_BATCH : (b + 1) * PER_BATCH]
        moment = at + timedelta(seconds=b)
        rows = [(h, moment, received, *_floor_metrics(i)) for i, h in enumerate(ids)]
        latest = [LatestRow(h, received, moment, *_floor_metrics(i), *_FLOOR_PREVIOUS) for i, h in enumerate(ids)]
        prepared.append((rows, latest))
    t0 = time.perf_counter()
    for rows, latest in prepared:
        with transaction.atomic():
            samples_insert(rows)
            latest_write(latest)
    return batches * PER_BATCH / (time.perf_counter() - t0)


async def figures_collectors(record: Record, *, hosts: int = 10_000, rounds: int = 3) -> None:
    """First contact and many-host batches, on a twin in open mode."""
    names = [f"fc-{i:05d}" for i in range(hosts)]
    start = datetime.now(UTC) - timedelta(hours=1)

    def bodies(at: datetime) -> list[bytes]:
        return [
            orjson.dumps(
                {"samples": [_collector_sample(n, at, i) for i, n in enumerate(names[b : b + PER_BATCH], start=b)]}
            )
            for b in range(0, hosts, PER_BATCH)
        ]

    first_rates: list[float] = []
    steady_rates: list[float] = []
    floor_rates: list[float] = []
    with daphne("twinsite.asgi:application", **OPEN_ENV) as server:
        for r in range(rounds):
            prefix = f"fc{r}-"
            names = [f"{prefix}{i:05d}" for i in range(hosts)]
            first = bodies(start)
            seconds = await _send_all(server, first, SENDERS)
            first_rates.append(hosts / seconds)
            steady_rates.append(hosts / await _send_all(server, bodies(start + timedelta(seconds=10)), SENDERS))
            host_ids = list(Host.objects.filter(hostname__in=names).order_by("hostname").values_list("pk", flat=True))
            assert len(host_ids) == hosts, f"{len(host_ids)} of {hosts} hosts created"
            assert Sample.objects.filter(host_id__in=host_ids).count() == 2 * hosts, "samples were lost"
            floor_rates.append(_many_host_floor(host_ids, start + timedelta(seconds=20), hosts // PER_BATCH))
            # The hosts go before the next round (and before any later figure counts the fleet).
            Host.objects.filter(hostname__startswith=prefix).delete()
    Rack.objects.filter(name__startswith="fc-R").delete()
    first_ratio = [f / s for f, s in zip(first_rates, steady_rates, strict=True)]
    many_ratio = [s / f for s, f in zip(steady_rates, floor_rates, strict=True)]
    rounds_text = f"{rounds} rounds of {hosts:,} hosts, {SENDERS} senders"
    record(
        "First contact, 500 new hosts a batch",
        f"{statistics.median(first_rates):,.0f} samples/s ({rounds_text}; rack, uplink, latest row each)",
        f"{statistics.median(steady_rates):,.0f} samples/s (the same hosts' next batches)",
        _rounds(first_ratio),
        ">= 50%",
        statistics.median(first_ratio) >= 0.5,
    )
    record(
        "Many-host batches, 500 hosts a batch (open mode)",
        f"{statistics.median(steady_rates):,.0f} samples/s ({rounds_text})",
        f"{statistics.median(floor_rates):,.0f} rows/s (COPY history + upsert latest, one transaction a batch)",
        _rounds(many_ratio),
        ">= 50%",
        statistics.median(many_ratio) >= 0.5,
    )


def _rounds(ratios: list[float]) -> str:
    return f"{statistics.median(ratios):.0%} (rounds: {', '.join(f'{r:.0%}' for r in ratios)})"


async def _rate(seconds: float, workers: int, job: Callable[[int], Awaitable[None]]) -> float:
    done = {"n": 0}

    async def counted(worker: int) -> None:
        await job(worker)
        done["n"] += 1

    await run_for(seconds, workers, counted)
    return done["n"] / seconds


async def figures_agents_per_process(
    record: Record, server: Server, key: str, *, agents_count: int = 200, connections: int = 32, seconds: float = 6
) -> None:
    """The twin's health endpoint and signed one-sample batches against a bare Django view, same daphne, same client."""
    with daphne("bench.bare_django.asgi:application", DJANGO_SETTINGS_MODULE="bench.bare_django.settings") as bare:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as http:
            agents: list[Agent] = []
            for start in range(0, agents_count, 20):
                agents += await asyncio.gather(
                    *(register(http, server.url, key, f"agent-{i:04d}") for i in range(start, start + 20))
                )
            clock = {a.hostname: datetime.now(UTC) - timedelta(hours=2) for a in agents}
            turn = {"i": 0}

            async def get(url: str) -> None:
                async with http.get(url) as response:
                    await response.read()
                    assert response.status == 200, response.status

            async def bare_view(worker: int) -> None:
                await get(f"{bare.url}/health")

            async def health(worker: int) -> None:
                await get(f"{server.url}/api/health")

            async def signed_batch(worker: int) -> None:
                agent = agents[turn["i"] % len(agents)]
                turn["i"] += 1
                clock[agent.hostname] += timedelta(seconds=10)
                body, headers = agent.signed([sample(agent.hostname, clock[agent.hostname])])
                async with http.post(f"{server.url}/api/metrics/batch", data=body, headers=headers) as response:
                    await response.read()
                    assert response.status == 202, await response.text()

            await _rate(1.0, connections, signed_batch)  # warm up
            await _rate(1.0, connections, bare_view)
            rates: dict[str, list[float]] = {"bare": [], "health": [], "signed": []}
            for _ in range(3):
                rates["bare"].append(await _rate(seconds, connections, bare_view))
                rates["health"].append(await _rate(seconds, connections, health))
                rates["signed"].append(await _rate(seconds, connections, signed_batch))
    floor = statistics.median(rates["bare"])
    shape = f"{connections} connections, 3 rounds of {seconds:g} s"
    floor_text = f"{floor:,.0f} req/s (bare Django: 2 middlewares, one JSON view, same daphne)"
    health_ratio = [h / b for h, b in zip(rates["health"], rates["bare"], strict=True)]
    signed_ratio = [s / b for s, b in zip(rates["signed"], rates["bare"], strict=True)]
    signed = statistics.median(rates["signed"])
    record(
        "Trivial endpoint (GET /api/health)",
        f"{statistics.median(rates['health']):,.0f} req/s ({shape})",
        floor_text,
        _rounds(health_ratio),
        ">= 80%",
        statistics.median(health_ratio) >= 0.8,
    )
    record(
        f"Signed one-sample batches, {agents_count} agents",
        f"{signed:,.0f} req/s ({shape}): about {signed * 10:,.0f} hosts a process at a 10 s interval",
        floor_text,
        _rounds(signed_ratio),
        ">= 50%",
        statistics.median(signed_ratio) >= 0.5,
    )


async def fleet_shapes(record: Record, server: Server, key: str, *, quick: bool = False) -> None:
    """Every figure of this module, for ``bench.run``."""
    await figures_agents_per_process(record, server, key, seconds=3 if quick else 6)
    await figures_collectors(record, hosts=2000 if quick else 10_000, rounds=1 if quick else 3)


if __name__ == "__main__":
    import argparse

    from bench.harness import ROOT
    from bench.run import record as run_record
    from hosts.services import enrollment_key_create

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=["agents", "collectors"])
    args = parser.parse_args()

    async def main() -> None:
        from django.core.management import call_command

        (ROOT / "var").mkdir(exist_ok=True)
        call_command("migrate", verbosity=0)
        _, key = enrollment_key_create(name="bench")
        env = {"TWIN_AGENT_AUTH": "signed", "TWIN_PUBLIC_READ": "true", "DEBUG": "false"}
        if args.only != "collectors":
            with daphne("twinsite.asgi:application", **env) as server:
                await figures_agents_per_process(run_record, server, key, seconds=3 if args.quick else 6)
        if args.only != "agents":
            await figures_collectors(run_record, hosts=2000 if args.quick else 10_000, rounds=1 if args.quick else 3)

    asyncio.run(main())
