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
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

RACK_PITCH_M = 0.7  # rack to rack along a row
ROW_PITCH_M = 2.4  # row to row, across an aisle
SLOT_M = 0.089  # 2U
FIRST_SLOT_M = 0.15
LINK_CAPACITY_GBPS = 10.0


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


def samples_post(url: str, samples: list[dict[str, Any]], *, batch: int = 1000) -> int:
    """POST the samples in batches; returns how many the server accepted."""
    accepted = 0
    for start in range(0, len(samples), batch):
        body = json.dumps({"samples": samples[start : start + batch]}).encode()
        request = urllib.request.Request(
            f"{url.rstrip('/')}/api/metrics/batch", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            accepted += json.loads(response.read())["accepted"]
    return accepted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--hosts", type=int, default=400)
    parser.add_argument("--per-rack", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=1, help="reporting rounds to send (0: until interrupted)")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between rounds")
    args = parser.parse_args()
    round_number = 0
    while True:
        samples = fleet_samples(
            hosts=args.hosts, per_rack=args.per_rack, round_number=round_number, interval=args.interval
        )
        accepted = samples_post(args.url, samples)
        print(f"round {round_number}: {accepted} samples accepted; open {args.url}/", flush=True)
        round_number += 1
        if args.rounds and round_number >= args.rounds:
            break
        time.sleep(args.interval)


if __name__ == "__main__":
    main()
