"""What the domain metrics cost the ingest: in-process, min of many runs, alternating with and without.

    .venv/bin/python -m bench.instruments_cost    # about a minute; writes bench/instruments-results.md

Needs PostgreSQL (``BENCH_DATABASE_URL``, dropped and created anew, as for ``make bench``).
Runs twice: in one process's registry, and in prometheus_client's multiprocess mode
(``PROMETHEUS_MULTIPROC_DIR``, values in memory-mapped files), each in a fresh
interpreter because prometheus_client picks its mode at import.

1. The per-batch call itself (``batch_observe``): 20,000 calls a run, the fastest run of 30.
2. A one-sample batch through the whole view (Django's test client, PostgreSQL, commit):
   with the recording and with it replaced by a no-op, alternating, 200 batches a run,
   the fastest run of 15 of each. The difference is within the noise; (1) is the cost.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "instruments-results.md"


def measure() -> dict[str, float]:
    os.environ.update(
        {"TWIN_AGENT_AUTH": "open", "ALLOWED_HOSTS": "testserver", "TWIN_INGEST_RATE_PER_MINUTE": "10000000"}
    )
    import orjson
    from django.core.management import call_command
    from django.test import Client

    import bench.django_setup  # noqa: F401  (a fresh database, Django set up)
    import metrics.views
    from metrics.instruments import batch_observe
    from metrics.services import IngestResult
    from twin.live import instruments as live

    call_command("migrate", verbosity=0)
    figures: dict[str, float] = {}

    # 1. The call alone, for a usual batch (all stored) and a 5 MB twin-state's size note.
    result = IngestResult(received_at=datetime.now(UTC), accepted=500)
    calls = 20_000
    best = float("inf")
    for _ in range(30):
        t0 = time.perf_counter()
        for _ in range(calls):
            batch_observe(result, seconds=0.004)
        best = min(best, (time.perf_counter() - t0) / calls)
    figures["batch_observe_us"] = best * 1e6
    state_text = "x" * 5_000_000
    data = ["twin-state", None]
    best = float("inf")
    for _ in range(30):
        t0 = time.perf_counter()
        for _ in range(1000):
            live.packet_encoded(data, state_text)
            live.sent_record("twin-state", 200)
        best = min(best, (time.perf_counter() - t0) / 1000)
    figures["live_record_us"] = best * 1e6

    # 2. One-sample batches through the view, with and without the recording.
    client = Client()
    clock = [datetime.now(UTC) - timedelta(days=1)]

    def batches(count: int) -> float:
        start = time.perf_counter()
        for _ in range(count):
            clock[0] += timedelta(seconds=1)
            body = orjson.dumps(
                {
                    "samples": [
                        {
                            "hostname": "cost-01",
                            "timestamp": clock[0].isoformat().replace("+00:00", "Z"),
                            "cpu_load": 42.5,
                            "memory_used_percent": 63.2,
                            "load_average": 1.72,
                            "uptime_seconds": 7200,
                            "agent_version": "0.1.0",
                            "platform": "Linux-x86_64",
                            "net_bytes_tx": 1,
                            "net_bytes_rx": 2,
                        }
                    ]
                }
            )
            response = client.post("/api/metrics/batch", data=body, content_type="application/json")
            assert response.status_code == 202, response.content
        return (time.perf_counter() - start) / count

    batches(200)  # warm up: the host exists, caches and pools are filled
    with_recording, without = float("inf"), float("inf")
    for _ in range(15):
        with_recording = min(with_recording, batches(200))
        metrics.views.batch_observe = lambda result, *, seconds: None
        without = min(without, batches(200))
        metrics.views.batch_observe = batch_observe
    figures["batch_with_us"] = with_recording * 1e6
    figures["batch_without_us"] = without * 1e6
    return figures


def main() -> None:
    if os.environ.get("INSTRUMENTS_COST_CHILD"):
        print(json.dumps(measure()))
        return
    rows = {}
    for mode in ("one process", "multiprocess"):
        env = {**os.environ, "INSTRUMENTS_COST_CHILD": "1"}
        with tempfile.TemporaryDirectory() as shared:
            if mode == "multiprocess":
                env["PROMETHEUS_MULTIPROC_DIR"] = shared
            out = subprocess.run(
                [sys.executable, "-m", "bench.instruments_cost"], cwd=ROOT, env=env, capture_output=True, text=True
            )
        if out.returncode != 0:
            sys.exit(out.stderr)
        rows[mode] = json.loads(out.stdout.strip().splitlines()[-1])
        print(mode, rows[mode])
    lines = [
        "# What the domain metrics cost the ingest",
        "",
        f"`python -m bench.instruments_cost`, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.node()} ({os.cpu_count()} cores, shared with other work), PostgreSQL, in-process.",
        "Fastest run of many for each figure; the view's figures alternate with and without the recording.",
        "",
        "| figure | one process | multiprocess mode |",
        "| --- | --- | --- |",
    ]
    one, multi = rows["one process"], rows["multiprocess"]

    def row(name: str, key: str, unit: str = "µs") -> None:
        lines.append(f"| {name} | {one[key]:.2f} {unit} | {multi[key]:.2f} {unit} |")

    row("`batch_observe` per batch (histogram, outcome, samples)", "batch_observe_us")
    row("a push's notes: `packet_encoded` of a 5 MB twin-state + `sent_record` to 200 clients", "live_record_us")
    row("one-sample batch through the view (PostgreSQL commit included), with the recording", "batch_with_us")
    row("the same, the recording replaced by a no-op (the floor)", "batch_without_us")
    for mode, figures in rows.items():
        share = figures["batch_observe_us"] / figures["batch_without_us"]
        lines.append("")
        lines.append(
            f"{mode}: the recording is {share:.2%} of a one-sample batch's time in the view "
            f"({figures['batch_observe_us']:.1f} µs of {figures['batch_without_us']:.0f} µs). The view's "
            f"with/without difference ({figures['batch_with_us'] - figures['batch_without_us']:+.0f} µs) is the "
            "shared machine's noise between runs, not the recording, which is the first row."
        )
    RESULTS.write_text("\n".join(lines) + "\n")
    print(RESULTS.read_text())


if __name__ == "__main__":
    main()
