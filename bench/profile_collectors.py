"""Profile 500-host batches (a collector in open mode) in-process: first contact, then the same hosts again.

DATABASE_URL=postgres://…/twin_prof .venv/bin/python bench/profile_collectors.py [hosts] [--profile]
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import django
import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "twinsite.settings")
os.environ["TWIN_AGENT_AUTH"] = "open"
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from pyinstrument import Profiler  # noqa: E402

from hosts.models import Host, Rack  # noqa: E402
from metrics.services import samples_ingest  # noqa: E402

PER_BATCH = 500


def batches(prefix: str, hosts: int, at: datetime) -> list[list[msgspec.Raw]]:
    out = []
    for b in range(0, hosts, PER_BATCH):
        out.append(
            [
                msgspec.Raw(
                    msgspec.json.encode(
                        {
                            "hostname": f"{prefix}{i:05d}",
                            "timestamp": at.isoformat(),
                            "cpu_load": 42.5,
                            "memory_used_percent": 63.2,
                            "load_average": 1.72,
                            "uptime_seconds": 7200 + i,
                            "net_bytes_tx": 1_000_000 * i,
                            "net_bytes_rx": 2_000_000 * i,
                            "agent_version": "0.1.0",
                            "platform": "Linux-x86_64",
                            "rack": f"pc-R{i // 40:04d}",
                            "position": {"x": float(i % 40), "y": 1.0, "z": 0.0},
                        }
                    )
                )
                for i in range(b, b + PER_BATCH)
            ]
        )
    return out


def run(all_batches: list[list[msgspec.Raw]], profiler: Profiler | None) -> float:
    if profiler:
        profiler.start()
    t0 = time.perf_counter()
    for raw in all_batches:
        result = samples_ingest(raw_samples=raw, received_at=datetime.now(UTC))
        assert result.accepted == PER_BATCH, result
    elapsed = time.perf_counter() - t0
    if profiler:
        profiler.stop()
    return elapsed


def main(hosts: int, profile: bool) -> None:
    call_command("migrate", verbosity=0)
    prefix = f"pc{int(time.time()) % 100000}-"
    start = datetime.now(UTC) - timedelta(hours=1)
    first, steady = batches(prefix, hosts, start), batches(prefix, hosts, start + timedelta(seconds=10))
    p1 = Profiler(interval=0.0005) if profile else None
    t_first = run(first, p1)
    p2 = Profiler(interval=0.0005) if profile else None
    t_steady = run(steady, p2)
    print(f"first contact: {hosts / t_first:,.0f} samples/s ({t_first / len(first) * 1000:.1f} ms a batch)")
    print(f"steady:        {hosts / t_steady:,.0f} samples/s ({t_steady / len(steady) * 1000:.1f} ms a batch)")
    print(f"ratio {t_steady / t_first:.0%}")
    for p in (p1, p2):
        if p:
            print(p.output_text(unicode=False, color=False, show_all=False))
    Host.objects.filter(hostname__startswith=prefix).delete()
    Rack.objects.filter(name__startswith="pc-R").delete()
    connection.close()


if __name__ == "__main__":
    main(int(next((a for a in sys.argv[1:] if a.isdigit()), 5000)), "--profile" in sys.argv)
