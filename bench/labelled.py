"""``python -m bench.labelled``: labelled metrics through the batch path beside their floor (issue 23 item 1).

In process (the product's ``samples_ingest``), on a fresh PostgreSQL database,
in alternating rounds:

- measured: one-sample batches of a host whose sample carries 1,000 labelled
  metrics of series it already has (a node_exporter's worth, steady state);
- floor: the same sample without labelled metrics, plus a bare multi-row
  ``INSERT`` of the same 1,000 values into the series' history, in one
  transaction: what storing them costs at the least;
- and a capped host's flood: batches of 10 samples of 1,000 new label sets
  each, past ``TWIN_SERIES_MAX_PER_HOST``, and another host's one-sample
  batch timed during it against before it.

Figures only; no pass or fail (the tests prove the behaviour).
"""

from __future__ import annotations

import os
import statistics
import time
from datetime import UTC, datetime, timedelta

os.environ.setdefault("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/twin_bench_labelled")

import msgspec
import orjson
from django.core.management import call_command

import bench.django_setup  # noqa: F401  (first: a fresh database, Django set up)

SERIES = 1_000
BATCHES = 60
ROUNDS = 3


def _sample(hostname: str, at: datetime, metrics: list[dict] | None) -> msgspec.Raw:
    sample = {
        "hostname": hostname,
        "timestamp": at.isoformat(),
        "cpu_load": 10.0,
        "memory_used_percent": 20.0,
        "load_average": 0.5,
        "uptime_seconds": 100,
        "net_bytes_tx": 1,
        "net_bytes_rx": 1,
    }
    if metrics is not None:
        sample["metrics"] = metrics
    return msgspec.Raw(orjson.dumps(sample))


def main() -> None:
    from django.conf import settings
    from django.db import transaction

    from common.sql import rows_insert
    from metrics.models import Series, SeriesSample
    from metrics.services import samples_ingest

    call_command("migrate", verbosity=0)
    start = datetime.now(UTC) - timedelta(hours=2)
    known = [
        {"name": "node_filesystem_avail_bytes", "labels": {"mountpoint": f"/m{i}", "fstype": "ext4"}, "value": 1.0}
        for i in range(SERIES)
    ]
    clock = iter(start + timedelta(seconds=i) for i in range(10**6))
    samples_ingest(raw_samples=[_sample("steady-01", next(clock), known)], received_at=datetime.now(UTC))
    series_ids = list(Series.objects.filter(host__hostname="steady-01").values_list("pk", flat=True))
    assert len(series_ids) == SERIES

    def measured() -> float:
        began = time.perf_counter()
        for _ in range(BATCHES):
            samples_ingest(raw_samples=[_sample("steady-01", next(clock), known)], received_at=datetime.now(UTC))
        return (time.perf_counter() - began) / BATCHES

    def floor() -> float:
        began = time.perf_counter()
        for _ in range(BATCHES):
            at = next(clock)
            samples_ingest(raw_samples=[_sample("steady-01", at, None)], received_at=datetime.now(UTC))
            with transaction.atomic():
                now = datetime.now(UTC)
                rows_insert(
                    f"INSERT INTO {SeriesSample._meta.db_table} (series_id, timestamp, received_at, value)",
                    [(pk, at, now, 1.0) for pk in series_ids],
                )
        return (time.perf_counter() - began) / BATCHES

    rounds = []
    for _ in range(ROUNDS):
        rounds.append((measured(), floor()))
    for m, f in rounds:
        print(f"1,000 known labelled values a sample: {m * 1000:.1f} ms a batch; floor {f * 1000:.1f} ms ({f / m:.0%})")

    # The flood: a host past its limit, and another host beside it.
    settings.TWIN_SERIES_MAX_PER_HOST = SERIES
    quiet_clock = iter(start + timedelta(seconds=i) for i in range(10**6))

    def quiet() -> float:
        began = time.perf_counter()
        samples_ingest(raw_samples=[_sample("quiet-01", next(quiet_clock), known[:10])], received_at=datetime.now(UTC))
        return time.perf_counter() - began

    before = statistics.median(quiet() for _ in range(20))
    flood_times, during = [], []
    sent = 0
    for batch in range(10):
        raws = [
            _sample(
                "noisy-01",
                start + timedelta(seconds=batch * 10 + i),
                [{"name": "req", "labels": {"id": str(sent + i * SERIES + j)}, "value": 1.0} for j in range(SERIES)],
            )
            for i in range(10)
        ]
        sent += 10 * SERIES
        began = time.perf_counter()
        result = samples_ingest(raw_samples=raws, received_at=datetime.now(UTC))
        flood_times.append(time.perf_counter() - began)
        assert result.accepted == 10
        # The first after a flood batch pays for the garbage collector's pass over its objects;
        # the median of five shows what the database costs.
        during.append(statistics.median(quiet() for _ in range(5)))
    print(
        f"flood: {sent:,} label sets in 10 batches, {statistics.median(flood_times) * 1000:.0f} ms a batch (median); "
        f"another host's batch {before * 1000:.1f} ms before, {statistics.median(during) * 1000:.1f} ms between"
    )


if __name__ == "__main__":
    main()
