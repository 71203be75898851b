"""Profile the ingest of one 500-sample batch in-process, on the database of DATABASE_URL.

DATABASE_URL=postgres://postgres@127.0.0.1:5432/twin_bench .venv/bin/python bench/profile_ingest.py
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import django
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "twinsite.settings")
os.environ.setdefault("SECRET_KEY", "bench-only")
django.setup()

from django.core.management import call_command  # noqa: E402
from pyinstrument import Profiler  # noqa: E402

from metrics.schema import batch_decode  # noqa: E402
from metrics.services import BatchOrigin, samples_ingest  # noqa: E402


def batch_body(start: datetime, hosts: int, per_host: int) -> bytes:
    samples = [
        {
            "hostname": f"prof-{h:04d}",
            "timestamp": (start + timedelta(seconds=i)).isoformat(),
            "cpu_load": 42.5,
            "memory_used_percent": 63.2,
            "load_average": 1.72,
            "uptime_seconds": 7200 + i,
            "agent_version": "0.1.0",
            "platform": "Linux-x86_64",
            "net_bytes_tx": 1_000_000 * i,
            "net_bytes_rx": 2_000_000 * i,
        }
        for h in range(hosts)
        for i in range(per_host)
    ]
    return orjson.dumps({"samples": samples})


def main() -> None:
    call_command("migrate", verbosity=0)
    start = datetime.now(UTC) - timedelta(days=1)
    for round_ in range(3):  # warm up: hosts exist after the first round
        body = batch_body(start + timedelta(minutes=round_), hosts=50, per_host=10)
        samples_ingest(raw_samples=batch_decode(body).samples, received_at=datetime.now(UTC), origin=BatchOrigin())
    profiler = Profiler(interval=0.0005)
    profiler.start()
    for round_ in range(3, 13):
        body = batch_body(start + timedelta(minutes=round_), hosts=50, per_host=10)
        samples_ingest(raw_samples=batch_decode(body).samples, received_at=datetime.now(UTC), origin=BatchOrigin())
    profiler.stop()
    print(profiler.output_text(unicode=False, color=False, show_all=False))


if __name__ == "__main__":
    main()
