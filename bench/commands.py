"""Commands: dispatch latency and memory with 1,000 agents waiting on the long poll in one server process.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/twin_cmd .venv/bin/python -m bench.commands [--agents N]

Needs PostgreSQL (``BENCH_DATABASE_URL``, dropped and created anew). Starts one
daphne process (signed agents, in-memory channel layer, job runner on), sends
only to 127.0.0.1, stops it when done, and writes ``bench/commands-results.md``.

1. Register N agents (1,000), let each poll once with ``wait=0`` (every
   worker thread and code path warmed), and read the server's RSS: idle.
2. Every agent waits on ``GET /api/commands/pending?wait=25``, as a real one
   does: when an invocation arrives it reports it, then waits again. Their
   first waits are spread over 0-25 s, as in a fleet whose agents started at
   different times. With all of them waiting, read the RSS again (and the
   thread count).
3. Single commands: an operator posts ``ping`` to one random waiting host, 200
   times, 100 ms apart; dispatch latency is from just before the POST is sent
   to the moment that agent's poll answer carrying the command is read. Its
   floor, in the same run: the POST's own answer (the agent cannot have the
   command before it is committed).
4. Fleet commands: one ``ping`` to all N hosts with the default rate control
   (``max_concurrency`` 50), then one with none (``max_concurrency`` N): when
   each host received it, and when the last report was stored.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from django.core.management import call_command

import bench.django_setup  # noqa: F401  (first: a fresh database, Django set up)
from bench.harness import ROOT, Agent, daphne, pct, register
from commands.models import Command, Invocation
from hosts.credentials import signature_compute
from hosts.services import enrollment_key_create

RESULTS = ROOT / "bench" / "commands-results.md"
TARGET_P99_MS = 250.0
TARGET_MEMORY_MB = 100.0


def rss_mb(pid: int) -> float:
    return _status(pid, "VmRSS:") / 1024


def threads(pid: int) -> int:
    return _status(pid, "Threads:")


def _status(pid: int, key: str) -> int:
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith(key))
    return int(line.split()[1])


class Waiter:
    """One agent on the long poll: receives, acknowledges, reports, waits again; records when each command arrived."""

    def __init__(self, http: aiohttp.ClientSession, url: str, agent: Agent) -> None:
        self.http, self.url, self.agent = http, url, agent
        self.arrived: dict[int, float] = {}
        self.waiting = asyncio.Event()
        self.errors = 0
        self.retries = 0

    def _headers(self, signed: bytes) -> dict[str, str]:
        stamp = str(int(time.time()))
        return {
            "X-Twin-Key-Id": self.agent.key_id,
            "X-Twin-Timestamp": stamp,
            "X-Twin-Signature": signature_compute(secret=self.agent.secret, timestamp=stamp, body=signed),
        }

    async def poll(self, wait: float) -> list[dict[str, Any]]:
        path = f"/api/commands/pending?wait={wait:g}"
        async with self.http.get(self.url + path, headers=self._headers(f"GET {path}".encode())) as response:
            self.waiting.clear()
            body = await response.read()
            now = time.perf_counter()
            if response.status != 200:
                self.errors += 1
                return []
            invocations = orjson.loads(body)["invocations"]
            for invocation in invocations:
                self.arrived.setdefault(invocation["commandId"], now)
            return invocations

    async def report(self, command_id: int) -> None:
        """Report success; on a 503 wait its Retry-After and report again, as agents do."""
        body = orjson.dumps({"status": "succeeded", "exit_code": 0, "output": "pong"})
        while True:
            headers = {"Content-Type": "application/json", **self._headers(body)}
            url = f"{self.url}/api/commands/{command_id}/result"
            async with self.http.post(url, data=body, headers=headers) as r:
                if r.status != 503:
                    self.errors += r.status != 200
                    return
                self.retries += 1
                await asyncio.sleep(float(r.headers.get("Retry-After", "1")))

    async def run(self) -> None:
        # A fleet in its steady state: agents started at different times, so their waits end apart.
        wait = random.uniform(0, 25)
        while True:
            self.waiting.set()
            try:
                for invocation in await self.poll(wait):
                    await self.report(invocation["commandId"])
            except (aiohttp.ClientError, TimeoutError):
                self.errors += 1  # as an agent would: count it, wait a moment, ask again
                await asyncio.sleep(1)
            wait = 25


async def gather_in_rounds(calls: list[Callable[[], Awaitable[Any]]], size: int = 50) -> list[Any]:
    out: list[Any] = []
    for start in range(0, len(calls), size):
        out.extend(await asyncio.gather(*(c() for c in calls[start : start + size])))
    return out


async def main(count: int, singles: int) -> None:
    # Models are imported once Django is set up (bench.django_setup, above).
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    started = datetime.now(UTC)
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    call_command("migrate", verbosity=0)
    _, key = enrollment_key_create(name="bench")
    operator = get_user_model().objects.create_superuser("bench-operator", password="bench-only-password-1")
    token = Token.objects.create(user=operator).key
    env = {"TWIN_AGENT_AUTH": "signed", "TWIN_PUBLIC_READ": "false", "DEBUG": "false"}
    notes: list[str] = []
    with daphne("twinsite.asgi:application", **env) as server:
        pid = server.process.pid
        connector = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            agents = await gather_in_rounds(
                [lambda i=i: register(http, server.url, key, f"wait-{i:04d}") for i in range(count)], size=20
            )
            waiters = [Waiter(http, server.url, a) for a in agents]
            await gather_in_rounds([lambda w=w: w.poll(0) for w in waiters])
            await asyncio.sleep(3)
            idle_rss, idle_threads = rss_mb(pid), threads(pid)

            tasks = [asyncio.ensure_future(w.run()) for w in waiters]
            await asyncio.gather(*(w.waiting.wait() for w in waiters))
            await asyncio.sleep(3)  # every poll has reached the server and is waiting
            waiting_rss, waiting_threads = rss_mb(pid), threads(pid)

            operator_headers = {"Authorization": f"Token {token}"}

            async def send(hosts: list[str], max_concurrency: int | None = None) -> tuple[int, float, float]:
                document = {"action": "ping", "targets": {"hosts": hosts}}
                if max_concurrency is not None:
                    document["max_concurrency"] = max_concurrency
                sent = time.perf_counter()
                async with http.post(f"{server.url}/api/commands", json=document, headers=operator_headers) as r:
                    assert r.status == 201, await r.text()
                    command_id = (await r.json())["id"]
                return command_id, sent, time.perf_counter()

            async def arrival(waiter: Waiter, command_id: int, limit: float = 30.0) -> float:
                deadline = time.perf_counter() + limit
                while command_id not in waiter.arrived:
                    assert time.perf_counter() < deadline, f"{waiter.agent.hostname} never got {command_id}"
                    await asyncio.sleep(0.001)
                return waiter.arrived[command_id]

            dispatch, answered = [], []
            for _ in range(singles):
                waiter = random.choice(waiters)
                command_id, sent, answer = await send([waiter.agent.hostname])
                dispatch.append((await arrival(waiter, command_id) - sent) * 1000)
                answered.append((answer - sent) * 1000)
                await asyncio.sleep(0.1)

            async def settled(limit: float = 180) -> None:
                deadline = time.monotonic() + limit
                while Invocation.objects.exclude(state="succeeded").exists() and time.monotonic() < deadline:
                    await asyncio.sleep(0.5)

            fleets: dict[int | None, dict[str, Any]] = {}
            for max_concurrency in (None, count):  # the default rate control (50), then none
                await settled()
                await asyncio.sleep(2)  # every agent waiting again
                retries_before = sum(w.retries for w in waiters)
                command_id, sent, _answer = await send([w.agent.hostname for w in waiters], max_concurrency)
                arrivals = [(await arrival(w, command_id, 180) - sent) * 1000 for w in waiters]
                await settled()
                done = Invocation.objects.filter(command_id=command_id).order_by("-finished_at").first()
                fleets[max_concurrency] = {
                    "arrivals": arrivals,
                    "all_done_s": (done.finished_at - Command.objects.get(pk=command_id).issued_at).total_seconds(),
                    "retries": sum(w.retries for w in waiters) - retries_before,
                }
            peak_threads = threads(pid)
            errors = sum(w.errors for w in waiters)
            retries = sum(w.retries for w in waiters)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    load_after = Path("/proc/loadavg").read_text().split()[:3]
    commands = Command.objects.count()
    unfinished = Invocation.objects.exclude(state="succeeded").count()
    d50, d99 = pct(dispatch, 0.5), pct(dispatch, 0.99)
    f50, f99 = pct(answered, 0.5), pct(answered, 0.99)
    memory = waiting_rss - idle_rss
    rows = [
        (
            f"Dispatch latency, one host, {count:,} agents waiting ({singles} commands)",
            f"p50 {d50:.1f} ms, p99 {d99:.1f} ms (max {max(dispatch):.1f})",
            f"the POST's own answer: p50 {f50:.1f} ms, p99 {f99:.1f} ms",
            f"p99 <= {TARGET_P99_MS:.0f} ms",
            d99 <= TARGET_P99_MS,
        ),
        *(
            (
                f"One command to all {count:,} hosts, max_concurrency "
                + ("50 (the default)" if limit is None else f"{limit:,} (no rate control)"),
                f"each host has it after p50 {pct(f['arrivals'], 0.5):,.0f} ms, "
                f"p99 {pct(f['arrivals'], 0.99):,.0f} ms; "
                f"all reported after {f['all_done_s']:.1f} s; {f['retries']} reports answered 503 and sent again",
                "-",
                "- (no target; for scale)",
                None,
            )
            for limit, f in fleets.items()
        ),
        (
            f"Memory of {count:,} waiting agents",
            f"{memory:.1f} MB above idle ({idle_rss:.0f} MB idle, {waiting_rss:.0f} MB waiting; "
            f"{memory * 1024 / count:.0f} KB each)",
            f"idle, same process, after every agent polled once: {idle_rss:.0f} MB",
            f"< {TARGET_MEMORY_MB:.0f} MB",
            memory < TARGET_MEMORY_MB,
        ),
        (
            f"Server threads with {count:,} agents waiting",
            f"{waiting_threads} (peak {peak_threads} after the fleet commands)",
            f"idle: {idle_threads}",
            "no thread per waiter",
            waiting_threads - idle_threads < 10,
        ),
    ]
    notes.append(
        f"{commands} commands, {Invocation.objects.count()} invocations; {unfinished} not succeeded at the end, "
        f"{errors} refusals of agents' requests; {retries} reports answered 503 (no database connection free "
        "within DB_POOL_TIMEOUT) and sent again after Retry-After."
    )
    lines = [
        "# Commands benchmark: results",
        "",
        f"Run {started:%Y-%m-%d %H:%M} UTC by `python -m bench.commands` on {platform.node()} "
        f"({platform.processor() or platform.machine()}, Python {platform.python_version()}): one daphne process, "
        "PostgreSQL, in-memory channel layer, the agents and the operator in the benchmark's own process on the "
        "same two cores, shared with whatever else ran on the machine (load average "
        f"{' '.join(load_before)} at the start, {' '.join(load_after)} at the end). "
        "See the docstring of `bench/commands.py` for the method.",
        "",
        "| figure | measured | floor | target | met |",
        "| --- | --- | --- | --- | --- |",
        *(
            f"| {name} | {measured} | {floor} | {target} | {'-' if met is None else ('yes' if met else 'NO')} |"
            for name, measured, floor, target, met in rows
        ),
        "",
        *notes,
        "",
    ]
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=1000, help="agents waiting on the long poll (1,000)")
    parser.add_argument("--singles", type=int, default=200, help="single-host commands timed (200)")
    args = parser.parse_args()
    asyncio.run(main(args.agents, args.singles))
