"""The Prometheus exposition's benchmark: ``GET /api/twin/metrics`` at 10,000 hosts, beside its floor.

    .venv/bin/python -m bench.exposition [--quick]

Needs PostgreSQL (``BENCH_DATABASE_URL``, dropped and created anew, as for
``bench.run``). Seeds 10,000 hosts with latest values and uplinks, their
racks standing in two sites (so every series has hostname, rack and site),
and measures in this process, alternating:

1. the exposition (``twin.exposition.exposition_render``), classic text and
   OpenMetrics: the snapshot's reads, the families, the text;
2. its floor: the twin-state document built and encoded as
   ``GET /api/twin/state`` does (``snapshot_build`` + ``orjson.dumps``);
3. for contrast, prometheus_client's own generators writing the same
   families (what the exposition would cost written by the library);
4. gzip of the text at Django's level (what ``gzip_page`` adds when the
   scraper accepts it).

Writes ``bench/exposition-results.md``.
"""

from __future__ import annotations

import argparse
import gzip
import os
import platform
import statistics
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from django.core.management import call_command

import bench.django_setup  # noqa: F401  (first: a fresh database, Django set up)
from bench.fleet import fleet_seed
from bench.harness import ROOT, results_file_write
from facility.models import RackLocation, Room, Row, Site
from hosts.models import Rack
from twin.exposition import exposition_render
from twin.snapshot import gc_paused, snapshot_build

HOSTS = 10_000
TARGET_SECONDS = 1.0
TARGET_RATIO = 4.0
OPENMETRICS = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"

results: list[dict[str, Any]] = []
notes: list[str] = []


def record(figure: str, measured: str, floor: str, ratio: str, target: str, met: bool | None) -> None:
    results.append(
        {"figure": figure, "measured": measured, "floor": floor, "ratio": ratio, "target": target, "met": met}
    )
    print(f"{figure}: {measured} | floor {floor} | {ratio} | target {target} | {met}", flush=True)


def racks_place() -> None:
    """Stand every rack in a row of one of two sites, as an imported floor plan would."""
    rows = []
    for site_name in ("dc-east", "dc-west"):
        site = Site.objects.create(name=site_name)
        room = Room.objects.create(site=site, name="H1")
        rows.append(Row.objects.create(room=room, name="A"))
    racks = list(Rack.objects.order_by("name"))
    RackLocation.objects.bulk_create(
        [RackLocation(rack=rack, row=rows[i % 2], order=i) for i, rack in enumerate(racks)], batch_size=2000
    )


def cpu_timed(fn: Any) -> tuple[float, float]:
    """Wall time and this process's CPU time (on a shared machine the second moves less with the neighbours)."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main(quick: bool) -> None:
    call_command("migrate", verbosity=0)
    fleet_seed(hosts=HOSTS)
    racks_place()
    rounds = 5 if quick else 9

    def floor() -> None:
        with gc_paused():
            orjson.dumps(snapshot_build())

    classic_body, _ = exposition_render(accept=None)
    open_body, open_type = exposition_render(accept=OPENMETRICS)
    assert open_type.startswith("application/openmetrics-text"), open_type
    lines = classic_body.count(b"\n")
    classic, openmetrics, floors = [], [], []
    for _ in range(rounds):
        classic.append(cpu_timed(lambda: exposition_render(accept=None)))
        floors.append(cpu_timed(floor))
        openmetrics.append(cpu_timed(lambda: exposition_render(accept=OPENMETRICS)))
    floor_p50 = statistics.median(w for w, _ in floors)
    floor_cpu = statistics.median(c for _, c in floors)
    for name, times, body in (
        ("classic text 0.0.4", classic, classic_body),
        ("OpenMetrics 1.0", openmetrics, open_body),
    ):
        walls = [w for w, _ in times]
        p50, worst, cpu = statistics.median(walls), max(walls), statistics.median(c for _, c in times)
        record(
            f"Exposition, {HOSTS:,} hosts, {name}",
            f"p50 {p50 * 1000:.0f} ms, worst {worst * 1000:.0f} ms ({rounds} rounds), CPU p50 {cpu * 1000:.0f} ms;"
            f" {len(body) / 1e6:.1f} MB, {lines:,} lines",
            f"{floor_p50 * 1000:.0f} ms, CPU {floor_cpu * 1000:.0f} ms"
            " (snapshot_build + orjson.dumps: GET /api/twin/state's work)",
            f"{p50 / floor_p50:.1f}x (CPU {cpu / floor_cpu:.1f}x)",
            f"CPU p50 <= {TARGET_SECONDS:.0f} s, <= {TARGET_RATIO:.0f}x the floor's",
            cpu <= TARGET_SECONDS and cpu / floor_cpu <= TARGET_RATIO,
        )

    # The same families written by prometheus_client's generator: read back from the text by its parser.
    from prometheus_client.exposition import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    parsed = list(text_string_to_metric_families(classic_body.decode()))

    class Collector:
        def collect(self) -> Any:
            yield from parsed

    library = statistics.median(c for _, c in (cpu_timed(lambda: generate_latest(Collector())) for _ in range(3)))
    written = statistics.median(c for _, c in (cpu_timed(lambda: exposition_render(accept=None)) for _ in range(3)))
    record(
        "Text by prometheus_client's generate_latest, same families",
        f"CPU {library * 1000:.0f} ms for the text alone (3 rounds)",
        f"CPU {written * 1000:.0f} ms (the whole exposition_render, reads included)",
        f"{library / written:.1f}x",
        "(why the text is written by twin.exposition)",
        None,
    )
    zipped = statistics.median(
        c for _, c in (cpu_timed(lambda: gzip.compress(classic_body, compresslevel=6, mtime=0)) for _ in range(3))
    )
    size = len(gzip.compress(classic_body, compresslevel=6, mtime=0))
    record(
        "gzip of the classic text (Django's gzip_page, level 6)",
        f"CPU {zipped * 1000:.0f} ms; {size / 1e6:.2f} MB",
        f"{len(classic_body) / 1e6:.1f} MB unzipped",
        f"{size / len(classic_body):.1%} of the size",
        "(measure)",
        None,
    )
    notes.append(
        "Targets on CPU time (this process's): on two cores shared with other work the wall clock mostly measures"
        " the neighbours (the floor's wall time was several times its CPU time in the same rounds). The floor's reads"
        " run in PostgreSQL, outside this process's CPU time, as the exposition's do."
    )
    notes.append(
        f"Every host has its 6 reported fields, a rack and a site: {lines:,} lines,"
        f" {lines / HOSTS:.0f} a host (HELP/TYPE lines included)."
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5 rounds instead of 15")
    args = parser.parse_args()
    main(args.quick)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = [
        "# Exposition benchmark results",
        "",
        f"Run {stamp} by `python -m bench.exposition` on {platform.node()}: {os.cpu_count()} cores,"
        f" Python {platform.python_version()}, in process, PostgreSQL; load average at the end"
        f" {os.getloadavg()[0]:.1f} (other work on the same cores inflates every wall time, the floor's too).",
    ]
    path = ROOT / "bench" / "exposition-results.md"
    results_file_write(path, header=header, results=results, notes=notes, analysis=ROOT / "bench" / "none.md")
    print(f"\nwrote {path}")
