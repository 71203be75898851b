"""``python -m bench.alerts_cost``: what 20 alert rules over 10,000 hosts cost, beside their floors (issue 20).

Two figures, in one short run (about a minute and a half):

1. The evaluator in process: ``alerts.evaluation.alerts_evaluate`` over a
   seeded fleet of 10,000 hosts with 20 enabled rules, steady (what fires has
   fired), run as the job runs it. Measured: wall time and CPU per run, this
   process's and the PostgreSQL backend's (``/proc/<pid>/stat``), and the part
   that is the twin-state build it reads (``twin.snapshot.snapshot_read``), its
   floor. The share of one core is the CPU of one run times the runs in one
   report interval (the job runs every ``TWIN_ALERTS_EVALUATE_SECONDS``), over
   the interval (10 s).
2. Signed one-sample batches to a daphne serving the same fleet, whose job
   runner evaluates the rules every second: p99 with the 20 rules enabled
   against all rules disabled (the evaluator then returns before reading
   anything), alternating rounds.

``BENCH_DATABASE_URL`` names the database it drops and creates (default
``twin_bench``); ``--write`` adds the figures to ``bench/results.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from django.core.management import call_command
from django.db import connection

import bench.django_setup  # noqa: F401  (first: a fresh database, Django set up)
from bench.fleet import fleet_seed
from bench.harness import Agent, daphne, pct, register, sample

HOSTS = 10_000
RULES = 20
REPORT_INTERVAL = 10.0
TARGET_SHARE = 0.05
TARGET_P99_GROWTH = 0.05
RUNS = 12
AGENTS = 100
CONNECTIONS = 16
ROUND_SECONDS = 6.0
ROUNDS = 3
RESULTS = Path(__file__).with_name("results.md")
Record = Callable[[str, str, str, str, str, bool | None], None]
_TICKS = os.sysconf("SC_CLK_TCK")


def feeds_seed() -> None:
    """Feeds A and B of 11 kW each on every seeded rack, so the shipped rack rules read real capacities."""
    from facility.models import PowerFeed
    from hosts.models import Rack

    PowerFeed.objects.bulk_create(
        [PowerFeed(rack=r, side=side, capacity_watts=11_000.0) for r in Rack.objects.all() for side in ("A", "B")],
        ignore_conflicts=True,
    )


def rules_create() -> None:
    """The shipped rules and more, up to 20 enabled: metrics with hysteresis and ``for``, statuses, absence.

    Thresholds as an operator sets them: a few hundred of the fleet's hosts
    (``bench.fleet``: CPU 10-89 %, memory 30-89 %) over one, most over none.
    """
    from alerts.models import Rule
    from alerts.rules import RuleSpec, rule_save

    Rule.objects.update(enabled=True)
    specs = [
        RuleSpec(name=f"Cpu{t}", field="cpu_load", operator=">", threshold=float(t), clear_threshold=t - 5.0)
        for t in (88, 90, 95, 99)
    ]
    specs += [
        RuleSpec(name=f"Memory{t}", field="memory_used_percent", operator=">", threshold=float(t), for_seconds=30)
        for t in (88, 92, 97)
    ]
    specs += [
        RuleSpec(name="Load", field="load_average", operator=">", threshold=7.0),
        RuleSpec(name="LoadLow", field="load_average", operator="<", threshold=0.5, for_seconds=60),
        RuleSpec(name="LinkBusy", field="link_utilization_percent", operator=">", threshold=80.0),
        RuleSpec(name="Throughput", field="net_throughput_gbps", operator="<", threshold=0.1),
        RuleSpec(name="UptimeShort", field="uptime_seconds", operator="<", threshold=600.0),
        RuleSpec(name="HostStale", kind="status", status="stale"),
        RuleSpec(name="Silent300", kind="absent", threshold=300.0),
    ]
    for spec in specs[: RULES - Rule.objects.count()]:
        rule_save(spec)
    # The seeded fleet reports once: the shipped AgentSilent (60 s) would fire on every host a minute in,
    # a burst of 20,000 transitions in the middle of the batch figure instead of its steady state.
    Rule.objects.filter(name="AgentSilent").update(threshold=3600.0)
    assert Rule.objects.filter(enabled=True).count() == RULES


def _backend_cpu() -> float:
    """CPU seconds used so far by this connection's PostgreSQL backend (same machine)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _timed(call: Callable[[], object]) -> tuple[float, float, float]:
    """(wall, this process's CPU, the backend's CPU) seconds of one call."""
    backend = _backend_cpu()
    cpu, wall = time.process_time(), time.perf_counter()
    call()
    return time.perf_counter() - wall, time.process_time() - cpu, _backend_cpu() - backend


def figure_evaluation(record: Record) -> None:
    from alerts.evaluation import alerts_evaluate
    from alerts.racks import racks_view
    from twin.snapshot import gc_paused, snapshot_read

    # Within the fleet's report interval of its last samples (bench.fleet: now): every host online.
    now = datetime.now(UTC)
    alerts_evaluate(now=now)  # what fires, fires; the runs below are steady
    runs, floors, rack_reads = [], [], []
    for i in range(RUNS):
        at = now + timedelta(seconds=(i + 1) * 0.5)
        with gc_paused():
            runs.append(_timed(lambda at=at: alerts_evaluate(now=at)))
            floors.append(_timed(lambda at=at: snapshot_read(now=at)))
            rack_reads.append(_timed(racks_view))
    from alerts.models import Alert

    open_alerts = Alert.objects.filter(state__in=["pending", "firing"]).count()
    wall = statistics.median(r[0] for r in runs)
    cpu = statistics.median(r[1] + r[2] for r in runs)
    floor_wall = statistics.median(f[0] for f in floors)
    floor_cpu = statistics.median(f[1] + f[2] for f in floors)
    racks_cpu = statistics.median(r[1] + r[2] for r in rack_reads)
    racks = len(racks_view())
    from django.conf import settings

    per_interval = REPORT_INTERVAL / settings.TWIN_ALERTS_EVALUATE_SECONDS
    share = cpu * per_interval / REPORT_INTERVAL
    share_once = cpu / REPORT_INTERVAL
    record(
        f"Alert evaluation, {RULES} rules over {HOSTS:,} hosts (steady, {open_alerts:,} open alerts)",
        f"a run: wall p50 {wall * 1000:.0f} ms, p99 {pct([r[0] for r in runs], 0.99) * 1000:.0f} ms; "
        f"CPU {cpu * 1000:.0f} ms (Python {statistics.median(r[1] for r in runs) * 1000:.0f} + PostgreSQL "
        f"{statistics.median(r[2] for r in runs) * 1000:.0f}); one run a second: {share:.1%} of one core; "
        f"one run per 10 s report interval: {share_once:.1%}",
        f"the twin-state build it reads (snapshot_read): wall {floor_wall * 1000:.0f} ms, "
        f"CPU {floor_cpu * 1000:.0f} ms; the rules' own part {max(0.0, cpu - floor_cpu) * 1000:.0f} ms, "
        f"of which the rack rules' read of {racks} racks' power (racks_view) "
        f"{statistics.median(r[0] for r in rack_reads) * 1000:.0f} ms wall, {racks_cpu * 1000:.0f} ms CPU",
        f"{cpu / floor_cpu:.2f}x the build",
        f"<= {TARGET_SHARE:.0%} of one core at a {REPORT_INTERVAL:g} s report interval",
        share <= TARGET_SHARE,
    )


async def _batches_p99(url: str, agents: list[Agent], clock: dict[str, datetime], seconds: float) -> list[float]:
    latencies: list[float] = []
    turn = {"i": 0}
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONNECTIONS)) as http:

        async def worker() -> None:
            while time.monotonic() < deadline:
                agent = agents[turn["i"] % len(agents)]
                turn["i"] += 1
                clock[agent.hostname] += timedelta(seconds=10)
                body, headers = agent.signed([sample(agent.hostname, clock[agent.hostname])])
                started = time.perf_counter()
                async with http.post(f"{url}/api/metrics/batch", data=body, headers=headers) as response:
                    await response.read()
                    assert response.status == 202, response.status
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
    return latencies


def figure_signed_batches(record: Record, *, jobs_apart: bool = False) -> None:
    """Signed batches' p99 with the rules on and off; ``jobs_apart``: the jobs in a ``run_jobs --loop`` process."""
    from django.db.models.functions import Now

    from alerts.models import Rule
    from hosts.services import enrollment_key_create
    from metrics.models import LatestMetrics

    _, key = enrollment_key_create(name=f"bench-{jobs_apart}")
    # As bench.run: seeded hosts are seen once, and with the default 30 s all 10,000 would turn stale
    # (and fire HostStale) in the middle of the figure.
    env = {
        "TWIN_AGENT_AUTH": "signed",
        "TWIN_PUBLIC_READ": "true",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "TWIN_STALE_AFTER_SECONDS": "600",
        "TWIN_OFFLINE_AFTER_SECONDS": "1800",
    }
    LatestMetrics.objects.update(last_seen=Now())
    if jobs_apart:
        env["TWIN_JOBS_ENABLED"] = "false"
    enabled = list(Rule.objects.filter(enabled=True).values_list("pk", flat=True))

    async def scenario(url: str) -> dict[str, list[float]]:
        async with aiohttp.ClientSession() as http:
            agents = []
            for start in range(0, AGENTS, 20):
                agents += await asyncio.gather(
                    *(register(http, url, key, f"agent-{i:04d}") for i in range(start, start + 20))
                )
        clock = {a.hostname: datetime.now(UTC) - timedelta(hours=2) for a in agents}
        await _batches_p99(url, agents, clock, 2.0)  # warm up
        rounds: dict[str, list[float]] = {"with": [], "without": []}
        for _ in range(ROUNDS):
            for mode in ("without", "with"):
                Rule.objects.filter(pk__in=enabled).update(enabled=mode == "with")
                await asyncio.sleep(1.5)  # the server's next evaluation sees it
                rounds[mode].append(pct(await _batches_p99(url, agents, clock, ROUND_SECONDS), 0.99))
        return rounds

    runner = None
    if jobs_apart:
        runner = subprocess.Popen(
            [sys.executable, "manage.py", "run_jobs", "--loop"],
            cwd=Path(__file__).resolve().parents[1],
            env={**{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    try:
        with daphne("twinsite.asgi:application", **env) as server:
            rounds = asyncio.run(scenario(server.url))
    finally:
        if runner is not None:
            runner.terminate()
            runner.wait(timeout=10)
    from alerts.models import Alert

    assert Alert.objects.filter(state__in=["pending", "firing"]).count() < 1000, "not the steady state"
    with_p99, without_p99 = statistics.median(rounds["with"]), statistics.median(rounds["without"])
    growth = with_p99 / without_p99 - 1
    where = "a run_jobs process beside the server" if jobs_apart else "the server"
    record(
        f"Signed one-sample batches while {where} evaluates {RULES} rules over {HOSTS:,} hosts every second",
        f"p99 {with_p99 * 1000:.0f} ms (rounds: {', '.join(f'{p * 1000:.0f}' for p in rounds['with'])} ms; "
        f"{CONNECTIONS} connections, {ROUNDS} rounds of {ROUND_SECONDS:g} s)",
        f"p99 {without_p99 * 1000:.0f} ms with every rule disabled "
        f"(rounds: {', '.join(f'{p * 1000:.0f}' for p in rounds['without'])} ms)",
        f"{growth:+.0%}",
        f"<= +{TARGET_P99_GROWTH:.0%}",
        growth <= TARGET_P99_GROWTH,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="append the figures to bench/results.md")
    parser.add_argument("--only", choices=["evaluation", "batches", "apart"])
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    fleet_seed(hosts=HOSTS)
    feeds_seed()
    rules_create()
    print(f"fleet of {HOSTS:,} hosts and {RULES} rules in {time.perf_counter() - started:.1f} s")
    rows: list[str] = []

    def record(figure: str, measured: str, floor: str, ratio: str, target: str, met: bool | None) -> None:
        verdict = "-" if met is None else ("yes" if met else "**no**")
        row = f"| {figure} | {measured} | {floor} | {ratio} | {target} | {verdict} |"
        print(row)
        rows.append(row)

    if args.only in (None, "evaluation"):
        figure_evaluation(record)
    if args.only in (None, "batches"):
        figure_signed_batches(record)
    if args.only in (None, "apart"):
        figure_signed_batches(record, jobs_apart=True)
    if args.write:
        text = RESULTS.read_text()
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        section = f"\n## Alerts (issue 20): `python -m bench.alerts_cost`, run {stamp}\n\n"
        section += (
            "| figure | measured | floor (same run) | ratio | target | met |\n| --- | --- | --- | --- | --- | --- |\n"
        )
        RESULTS.write_text(text.rstrip("\n") + "\n" + section + "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
