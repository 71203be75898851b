"""``python -m bench.capacity``: the capacity question at 250 racks and 10,000 hosts, beside its floor.

Moved out of the tests (a timing is a measurement, not an assertion): a
generated floor is imported, then ``facility.selectors.capacity_find`` is
asked the issue's example (2U, 800 W) several times; the median is printed
beside the floor of 100 ms.
"""

from __future__ import annotations

import statistics
import time

import orjson
from django.core.management import call_command

import bench.django_setup  # noqa: F401  (first: a fresh database, Django set up)

FLOOR_MS = 100.0


def main() -> None:
    call_command("migrate", verbosity=0)
    from facility.generate import floor_generate
    from facility.importing import floor_import
    from facility.selectors import capacity_find

    started = time.perf_counter()
    floor_import(raw=orjson.dumps(floor_generate()))
    imported = time.perf_counter() - started
    timings = []
    for _ in range(9):
        started = time.perf_counter()
        _, checked, _ = capacity_find(u=2, watts=800)
        timings.append((time.perf_counter() - started) * 1000)
    median = statistics.median(timings)
    print(f"floor import, 10,000 hosts: {imported:.1f} s")
    verdict = "ok" if median <= FLOOR_MS else "BELOW FLOOR"
    print(f"capacity answer, {checked} racks: median {median:.1f} ms (floor {FLOOR_MS:.0f} ms) {verdict}")


if __name__ == "__main__":
    main()
