"""``python -m bench.remote_write``: Prometheus remote-write ingest beside the twin's own batch ingest (issue 23).

The same number of values through both paths, in-process (Django's test
client: no HTTP between, so the figure is the two paths' own cost) on a fresh
PostgreSQL database, in alternating rounds:

- measured: write requests of node_exporter scrapes, ~1,000 series a host
  (the seed's fields from ~30 of them, the rest counted and not kept: labelled
  metrics will keep them), 10 hosts a request, as Prometheus shards send them;
- floor: open-mode batches of the same number of values as samples (each sample
  carries the seed's six), the twin's own ingest.

Target: values per second through remote-write at least 0.5 of the batch's.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import UTC, datetime

os.environ.setdefault("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/twin_bench_rw")

import orjson
from django.core.management import call_command

import bench.django_setup  # noqa: F401  (first: a fresh database, Django set up)

HOSTS_PER_REQUEST = 10
SERIES_PER_HOST = 1000
REQUESTS = 20
ROUNDS = 3
VALUES_PER_SAMPLE = 6
TARGET = 0.5


def main() -> None:
    from django.conf import settings
    from django.test import Client

    from collectors.services import collector_token_create
    from tests.collectors.writes import node_scrape, write_body

    call_command("migrate", verbosity=0)
    settings.ALLOWED_HOSTS = ["testserver"]
    settings.TWIN_AGENT_AUTH = "open"
    settings.TWIN_INGEST_RATE_PER_MINUTE = 10**9
    client = Client()
    _, token = collector_token_create(name="bench")
    base = int(datetime.now(UTC).timestamp()) * 1000 - 3_600_000
    per_host = len(node_scrape(0, cpus=8))
    extra = SERIES_PER_HOST - len(node_scrape(0, cpus=8, extra=0))
    series_values = HOSTS_PER_REQUEST * SERIES_PER_HOST

    def writes(at_ms: int, prefix: str) -> list[bytes]:
        return [
            write_body(
                [
                    s
                    for h in range(HOSTS_PER_REQUEST)
                    for s in node_scrape(
                        at_ms, host=f"{prefix}-{r:03}-{h:02}", cpus=8, busy=at_ms / 1e5, idle=at_ms / 2e4, extra=extra
                    )
                ]
            )
            for r in range(REQUESTS)
        ]

    def batches(at: datetime, prefix: str) -> list[bytes]:
        per_batch = series_values // VALUES_PER_SAMPLE
        return [
            orjson.dumps(
                {
                    "samples": [
                        {
                            "hostname": f"{prefix}-{r:03}-{i % 50:02}",
                            "timestamp": at.replace(microsecond=i).isoformat(),
                            "cpu_load": 10.0,
                            "memory_used_percent": 50.0,
                            "load_average": 0.5,
                            "uptime_seconds": 1000,
                            "net_bytes_tx": i,
                            "net_bytes_rx": i,
                        }
                        for i in range(per_batch)
                    ]
                }
            )
            for r in range(REQUESTS)
        ]

    headers = {"Authorization": f"Bearer {token}", "Content-Encoding": "snappy"}

    def send_writes(bodies: list[bytes]) -> float:
        started = time.perf_counter()
        for body in bodies:
            response = client.post("/api/v1/write", body, content_type="application/x-protobuf", headers=headers)
            assert response.status_code == 200, response.content
        return time.perf_counter() - started

    def send_batches(bodies: list[bytes]) -> float:
        started = time.perf_counter()
        for body in bodies:
            response = client.post("/api/metrics/batch", body, content_type="application/json")
            assert response.status_code == 202, response.content
        return time.perf_counter() - started

    # Every host's first scrape sets its CPU baseline: done before the clock, as hosts are known in a fleet.
    send_writes(writes(base, "rw"))
    send_batches(batches(datetime.fromtimestamp(base / 1000, UTC), "b"))
    ratios, rw_rates, batch_rates = [], [], []
    for n in range(1, ROUNDS + 1):
        at = base + n * 15_000
        rw = series_values * REQUESTS / send_writes(writes(at, "rw"))
        floor = series_values * REQUESTS / send_batches(batches(datetime.fromtimestamp(at / 1000, UTC), "b"))
        rw_rates.append(rw)
        batch_rates.append(floor)
        ratios.append(rw / floor)
    ratio = statistics.median(ratios)
    print(
        f"remote-write, {HOSTS_PER_REQUEST} hosts x {SERIES_PER_HOST} series a request ({per_host + extra} a host): "
        f"{statistics.median(rw_rates):,.0f} values/s; batch ingest of as many values as samples: "
        f"{statistics.median(batch_rates):,.0f} values/s; ratio {ratio:.2f} (rounds: "
        f"{', '.join(f'{r:.2f}' for r in ratios)}), target >= {TARGET}: {'met' if ratio >= TARGET else 'MISSED'}"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
