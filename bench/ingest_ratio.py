"""In process: a batch through the whole request (``bench.ab``'s scenarios) against its floor, alternating.

    .venv/bin/python bench/ingest_ratio.py batch-500-hosts|signed-500 [--db twin_ab] [--rounds 40]

The floor of ``batch-500-hosts`` is ``bench.fleet_shapes``' (COPY of the 500
history rows and the upsert of the 500 latest rows, one transaction), that of
``signed-500`` is figure 1's of ``bench.run`` (COPY of 500 rows, one
transaction). Each round posts one batch (its body built and signed inside the
timed call, as ``bench.ab`` does) then runs one floor; the minima are the
figures nearest the work on a loaded machine, where the HTTP figures' floors
move by 2x from one run to the next. Prints one line: minima, medians, ratios.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=["batch-500-hosts", "signed-500"])
    parser.add_argument("--root", default=str(HERE.parents[1]))
    parser.add_argument("--db", default="twin_ab")
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    sys.path.insert(0, args.root)
    import bench.ab as ab

    ab._setup(Path(args.root), args.db, open_mode=args.scenario == "batch-500-hosts")
    from django.db import transaction

    from hosts.models import Host
    from metrics.fields import FIELD_NAMES
    from metrics.statements import LatestRow, latest_write, samples_insert

    # The scenario's own batch function, taken instead of timed by bench.ab.
    taken: dict[str, Callable[[int], None]] = {}

    def take(repeats: int, once: Callable[[int], None]) -> float:
        taken["post"] = once
        return 0.0

    ab._minimum = take
    ab.scenario_run(args.scenario)
    post = taken["post"]
    known = {"cpu_load": 42.5, "memory_used_percent": 63.2, "load_average": 1.72}
    previous = (None,) * (len(LatestRow._fields) - 3 - len(FIELD_NAMES))

    def values(i: int) -> list[object]:
        counters = {"uptime_seconds": 7200 + i, "net_bytes_tx": i * 10**6, "net_bytes_rx": i * 2**21}
        return [known.get(name, counters.get(name)) for name in FIELD_NAMES]

    host_ids = list(Host.objects.filter(hostname__startswith="ab-").order_by("hostname").values_list("pk", flat=True))
    floor_host = Host.objects.create(hostname="floor-copy")
    base = datetime.now(UTC) - timedelta(days=3)

    def floor(n: int) -> float:
        received = datetime.now(UTC)
        if args.scenario == "batch-500-hosts":
            moment = base + timedelta(seconds=n)
            rows = [(h, moment, received, *values(i)) for i, h in enumerate(host_ids[:500])]
            latest = [LatestRow(h, received, moment, *values(i), *previous) for i, h in enumerate(host_ids[:500])]
        else:
            rows = [(floor_host.pk, base + timedelta(seconds=n * 500 + i), received, *values(i)) for i in range(500)]
            latest = []
        t0 = time.perf_counter()
        with transaction.atomic():
            samples_insert(rows)
            latest_write(latest)
        return time.perf_counter() - t0

    post(-1)  # warm-up
    product, floors = [], []
    for n in range(args.rounds):
        t0 = time.perf_counter()
        post(n)
        product.append(time.perf_counter() - t0)
        floors.append(floor(n))
    product.sort()
    floors.sort()
    mid = args.rounds // 2
    print(
        f"{args.scenario}: product min {product[0] * 1000:.2f} ms, median {product[mid] * 1000:.2f} ms; "
        f"floor min {floors[0] * 1000:.2f} ms, median {floors[mid] * 1000:.2f} ms; "
        f"floor/product {floors[0] / product[0]:.2f} (minima), {floors[mid] / product[mid]:.2f} (medians)"
    )


if __name__ == "__main__":
    main()
