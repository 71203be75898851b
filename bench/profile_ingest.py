"""Profile signed batches end to end in-process (Django test client), on DATABASE_URL.

DATABASE_URL=postgres://postgres@127.0.0.1:5432/twin_prof .venv/bin/python bench/profile_ingest.py [samples]
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import django
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "twinsite.settings")
os.environ["TWIN_AGENT_AUTH"] = "signed"
os.environ["ALLOWED_HOSTS"] = "testserver"
os.environ["TWIN_INGEST_RATE_PER_MINUTE"] = "1000000"
django.setup()

from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from pyinstrument import Profiler  # noqa: E402

from hosts.credentials import signature_compute  # noqa: E402
from hosts.services import enrollment_key_create  # noqa: E402


def main(per_batch: int) -> None:
    call_command("migrate", verbosity=0)
    client = Client()
    _, key = enrollment_key_create(name="profile")
    hostname = f"prof-{int(time.time())}"
    reg = client.post(
        "/api/hosts/register",
        data={"hostname": hostname, "platform": "x", "agent_version": "1"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    ).json()
    start = datetime.now(UTC) - timedelta(days=1)

    def post(n: int) -> None:
        samples = [
            {
                "hostname": hostname,
                "timestamp": (start + timedelta(seconds=n * per_batch + i)).isoformat(),
                "cpu_load": 42.5,
                "memory_used_percent": 63.2,
                "load_average": 1.72,
                "uptime_seconds": 7200 + i,
                "net_bytes_tx": 1_000_000 * i,
                "net_bytes_rx": 2_000_000 * i,
            }
            for i in range(per_batch)
        ]
        body = orjson.dumps({"agent_session": "p", "sequence": n, "samples": samples})
        stamp = str(int(time.time()))
        headers = {
            "X-Twin-Key-Id": reg["keyId"],
            "X-Twin-Timestamp": stamp,
            "X-Twin-Signature": signature_compute(secret=reg["signingSecret"], timestamp=stamp, body=body),
        }
        response = client.post("/api/metrics/batch", data=body, content_type="application/json", headers=headers)
        assert response.status_code == 202, response.content

    for n in range(3):
        post(n)
    rounds = max(10, 2000 // per_batch)
    t0 = time.perf_counter()
    for n in range(3, 3 + rounds):
        post(n)
    elapsed = time.perf_counter() - t0
    print(f"{rounds} batches of {per_batch}: {elapsed / rounds * 1000:.2f} ms a batch, not profiled")
    profiler = Profiler(interval=0.0002)
    profiler.start()
    for n in range(3 + rounds, 3 + 2 * rounds):
        post(n)
    profiler.stop()
    print(profiler.output_text(unicode=False, color=False, show_all=False))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
