"""``python -m dashboard.demo``: post a demo fleet to a running twin, laid out as a data center floor.

Hosts stand in racks (2U apart, 20 to a rack), racks side by side in rows
with aisles between them, the floor centred on the core switch at the origin.
It sends reporting rounds (``--rounds``, every ``--interval`` seconds): a few
hosts fall silent (stale, then offline), a few racks run hot. It
posts seed-format batches, so the server must accept unsigned batches
(``TWIN_AGENT_AUTH=open``, as ``make run``). Used by the README's first look,
the browser tests and ``bench/dashboard.py``.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

RACK_PITCH_M = 0.7  # rack to rack along a row
ROW_PITCH_M = 2.4  # row to row, across an aisle
SLOT_M = 0.089  # 2U
FIRST_SLOT_M = 0.15
LINK_CAPACITY_GBPS = 10.0
# A server restarting (connection refused, 502/503/504) is waited for, backing off to this.
RETRY_MAX_DELAY_S = 10.0
RETRY_STATUSES = {502, 503, 504}


class DemoRefused(Exception):
    """The server refused a batch (a 4xx): sending it again would not help."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(f"the server refused the batch: {status} {error}: {detail}")
        self.status, self.error, self.detail = status, error, detail


def _refusal(error: urllib.error.HTTPError) -> DemoRefused:
    body = error.read()
    try:
        answer = json.loads(body)
        code, detail = str(answer.get("error", "error")), str(answer.get("detail", ""))
    except (ValueError, AttributeError):
        code, detail = "error", body.decode(errors="replace")[:500]
    return DemoRefused(error.code, code, detail)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def floor_plan(*, hosts: int, per_rack: int = 20) -> list[dict[str, Any]]:
    """Hostname, rack and position of each host: rows of racks about as long as the rows are deep."""
    racks = math.ceil(hosts / per_rack)
    rows = max(1, round(math.sqrt(racks * RACK_PITCH_M / ROW_PITCH_M)))
    per_row = math.ceil(racks / rows)
    width = (per_row - 1) * RACK_PITCH_M
    depth = (rows - 1) * ROW_PITCH_M
    plan = []
    for i in range(hosts):
        rack, slot = divmod(i, per_rack)
        row, column = divmod(rack, per_row)
        # Leave the middle of the floor to the core switch at the origin.
        z = row * ROW_PITCH_M - depth / 2 + (ROW_PITCH_M / 2 if rows % 2 else 0)
        plan.append(
            {
                "hostname": f"node-{i:05d}",
                "rack": f"R{row + 1:02d}-{column + 1:02d}",
                "position": {
                    "x": round(column * RACK_PITCH_M - width / 2, 3),
                    "y": round(FIRST_SLOT_M + slot * SLOT_M, 3),
                    "z": round(z, 3),
                },
            }
        )
    return plan


def fleet_samples(
    *, hosts: int, per_rack: int = 20, round_number: int = 0, interval: float = 10.0, now: datetime | None = None
) -> list[dict[str, Any]]:
    """The samples of one reporting round, as the agents would have sent them.

    Round 0 carries two samples per host, ``interval`` apart, so links have
    throughput at once; later rounds one. One host in a hundred reports only
    in round 0 (it goes stale, then offline), three in a hundred only every
    fourth round (stale between), and a rack in fifteen runs hot. Values are
    drawn from a generator seeded by host and round: the same call gives the
    same samples.
    """
    now = now or datetime.now(UTC)
    samples = []
    for i, place in enumerate(floor_plan(hosts=hosts, per_rack=per_rack)):
        host_rng = random.Random(i)
        draw = host_rng.random()
        silent, flaky = draw < 0.01, 0.01 <= draw < 0.04
        if round_number and (silent or (flaky and round_number % 4)):
            continue
        hot = (i // per_rack) % 15 == 4
        base_cpu = host_rng.uniform(70, 95) if hot else host_rng.betavariate(2, 5) * 100
        utilization = min(0.98, host_rng.betavariate(1.3, 6) + (0.35 if hot else 0))
        rate = utilization * LINK_CAPACITY_GBPS * 1e9 / 8  # bytes per second, tx + rx
        memory = host_rng.uniform(25, 85)
        rng = random.Random(i * 100_003 + round_number)
        steps = (-1, 0) if round_number == 0 else (round_number,)
        for step in steps:
            at = now + timedelta(seconds=interval * min(0, step))
            sent = rate * interval * (step + 1)
            cpu = min(99.5, max(0.5, base_cpu + rng.uniform(-6, 6)))
            samples.append(
                {
                    **place,
                    "timestamp": iso(at),
                    "cpu_load": round(cpu, 1),
                    "memory_used_percent": round(min(99.0, memory + rng.uniform(-2, 2)), 1),
                    "load_average": round(cpu / 100 * 16 * rng.uniform(0.8, 1.2), 2),
                    "uptime_seconds": int(86400 * (1 + i % 40) + interval * (step + 1)),
                    "agent_version": "0.3.1" if i % 9 else "0.2.7",
                    "platform": "Linux-x86_64",
                    "net_bytes_tx": int(10**12 + i * 10**6 + sent * 0.6),
                    "net_bytes_rx": int(5 * 10**11 + i * 10**6 + sent * 0.4),
                }
            )
    return samples


def samples_post(
    url: str,
    samples: list[dict[str, Any]],
    *,
    batch: int = 1000,
    retry_for: float = 300.0,
    say: Callable[[str], None] = print,
) -> int:
    """POST the samples in batches; returns how many the server accepted.

    A refusal (4xx) raises ``DemoRefused`` with the server's reason. An
    unreachable or restarting server is retried with a growing pause for up to
    ``retry_for`` seconds a batch, then the last error is raised.
    """
    accepted = 0
    for start in range(0, len(samples), batch):
        body = json.dumps({"samples": samples[start : start + batch]}).encode()
        deadline = time.monotonic() + retry_for
        delay = 0.5
        while True:
            request = urllib.request.Request(
                f"{url.rstrip('/')}/api/metrics/batch", data=body, headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=120) as response:
                    accepted += json.loads(response.read())["accepted"]
                break
            except urllib.error.HTTPError as error:
                if error.code not in RETRY_STATUSES:
                    raise _refusal(error) from None
                reason = f"{error.code} {error.reason}"
            except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
                reason = str(getattr(error, "reason", error))
            if time.monotonic() + delay > deadline:
                raise ConnectionError(f"{url} still unreachable after {retry_for:.0f} s: {reason}")
            say(f"{url} unreachable ({reason}); retrying in {delay:.1f} s")
            time.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_DELAY_S)
    return accepted


def parser_build() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the twin's address (default: %(default)s)")
    parser.add_argument("--hosts", type=int, default=400, help="hosts in the fleet (default: %(default)s)")
    parser.add_argument("--per-rack", type=int, default=20, help="hosts to a rack (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=1, help="reporting rounds to send (0: until interrupted)")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between rounds (default: %(default)s)")
    parser.add_argument(
        "--retry-for",
        type=float,
        default=300.0,
        help="seconds to keep retrying a batch while the server is unreachable or restarting (default: %(default)s)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser_build().parse_args(argv)
    round_number = 0
    try:
        while True:
            samples = fleet_samples(
                hosts=args.hosts, per_rack=args.per_rack, round_number=round_number, interval=args.interval
            )
            accepted = samples_post(args.url, samples, retry_for=args.retry_for)
            print(f"round {round_number}: {accepted} samples accepted; open {args.url}/", flush=True)
            round_number += 1
            if args.rounds and round_number >= args.rounds:
                return 0
            time.sleep(args.interval)
    except DemoRefused as refused:
        print(f"dashboard.demo: {refused}", file=sys.stderr)
        if refused.status == 401:
            print(
                "dashboard.demo posts unsigned batches: run the server with TWIN_AGENT_AUTH=open (as `make run`), "
                "or use `make demo`, whose simulator signs its batches.",
                file=sys.stderr,
            )
        return 2
    except ConnectionError as error:
        print(f"dashboard.demo: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
