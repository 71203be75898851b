"""An in-process A/B of two checkouts of the twin: the same scenario, alternating, minima of many runs.

    .venv/bin/python bench/ab.py drive --old /tmp/ab-old --old-db twin_h1old --new . --new-db twin_h1 \
        --rounds 5 snapshot-1000 snapshot-10000 signed-1 signed-500 batch-500-hosts

``drive`` runs each scenario ``--rounds`` times per checkout, old and new in
turn, each time in a fresh process of that checkout (``run``), and prints the
minimum of all of each side's runs. ``run`` prints one line: the scenario's
minimum seconds over its repetitions. Only functions both checkouts have are
called (``twin.snapshot.snapshot_build``, the batch endpoint through Django's
test client), so the script measures either. Each checkout has its own
database, flushed of this script's rows at each run; nothing here needs a server.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve()
SCENARIOS = ("snapshot-1000", "snapshot-10000", "signed-1", "signed-500", "batch-500-hosts")
# Repetitions inside one process, after a warm-up.
REPEATS = {"snapshot-1000": 30, "snapshot-10000": 8, "signed-1": 300, "signed-500": 30, "batch-500-hosts": 30}


def _setup(root: Path, database: str, *, open_mode: bool) -> None:
    """Django of the checkout at ``root`` on ``database`` (created if absent), migrated."""
    sys.path[:] = [str(root), *(p for p in sys.path if Path(p).resolve() != HERE.parent)]
    os.chdir(root)
    url = f"postgres://postgres@127.0.0.1:5432/{database}"
    import psycopg

    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{database}"')
    key = secrets.token_urlsafe(64)
    os.environ.pop("REDIS_URL", None)
    os.environ.update(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": key,
            "TWIN_CREDENTIAL_KEY": key,
            "DJANGO_SETTINGS_MODULE": "twinsite.settings",
            "LOG_LEVEL": "WARNING",
            "LOG_REQUESTS": "false",
            "DEBUG": "false",
            "ALLOWED_HOSTS": "testserver",
            "TWIN_AGENT_AUTH": "open" if open_mode else "signed",
            "TWIN_INGEST_RATE_PER_MINUTE": "100000000",
            "TWIN_JOBS_ENABLED": "false",
        }
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from hosts.models import Host

    # Each run starts from no hosts (their samples, latest values and credentials go with them).
    Host.objects.all().delete()


def _minimum(repeats: int, once: Callable[[int], None]) -> float:
    once(-1)  # warm-up: caches, compiled statements, first connection
    best = float("inf")
    for n in range(repeats):
        t0 = time.perf_counter()
        once(n)
        best = min(best, time.perf_counter() - t0)
    return best


def _snapshot(hosts: int, repeats: int) -> float:
    """``snapshot_build`` over ``hosts`` hosts with latest values."""
    from hosts.models import Host
    from metrics.models import LatestMetrics
    from twin.snapshot import snapshot_build

    now = datetime.now(UTC)
    Host.objects.bulk_create(
        [Host(hostname=f"ab-{i:05d}", ip=f"10.{i // 65536}.{i // 256 % 256}.{i % 256}") for i in range(hosts)]
    )
    LatestMetrics.objects.bulk_create(
        [
            LatestMetrics(
                host=h,
                last_seen=now,
                sample_time=now,
                cpu_load=42.5,
                memory_used_percent=63.2,
                load_average=1.72,
                uptime_seconds=7200,
                net_bytes_tx=10**6,
                net_bytes_rx=2 * 10**6,
            )
            for h in Host.objects.all()
        ]
    )
    return _minimum(repeats, lambda n: snapshot_build())


def _signed(per_batch: int, repeats: int) -> float:
    """One registered agent posting signed batches of ``per_batch`` samples (the whole request, in process)."""
    import orjson
    from django.test import Client

    from bench.harness import sample
    from hosts.credentials import signature_compute
    from hosts.services import enrollment_key_create

    client = Client()
    _, key = enrollment_key_create(name="ab")
    registration = client.post(
        "/api/hosts/register",
        data={"hostname": "ab-agent", "platform": "Linux-x86_64", "agent_version": "0.1.0"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    ).json()
    start = datetime.now(UTC) - timedelta(days=1)
    session = secrets.token_hex(8)

    def post(n: int) -> None:
        first = (n + 1) * per_batch
        samples = [sample("ab-agent", start + timedelta(seconds=first + i), i=i) for i in range(per_batch)]
        body = orjson.dumps({"agent_session": session, "sequence": n + 1, "samples": samples})
        stamp = str(int(time.time()))
        response = client.post(
            "/api/metrics/batch",
            data=body,
            content_type="application/json",
            headers={
                "X-Twin-Key-Id": registration["keyId"],
                "X-Twin-Timestamp": stamp,
                "X-Twin-Signature": signature_compute(secret=registration["signingSecret"], timestamp=stamp, body=body),
            },
        )
        assert response.status_code == 202 and response.json()["accepted"] == per_batch, response.content

    return _minimum(repeats, post)


def _many_hosts(hosts: int, repeats: int) -> float:
    """Unsigned batches (open mode) of one sample for each of ``hosts`` hosts, the hosts known already."""
    import orjson
    from django.test import Client

    from bench.harness import sample

    client = Client()
    names = [f"ab-{i:05d}" for i in range(hosts)]
    start = datetime.now(UTC) - timedelta(days=1)

    def post(n: int) -> None:
        at = start + timedelta(seconds=10 * (n + 2))
        body = orjson.dumps({"samples": [sample(name, at, i=i) for i, name in enumerate(names)]})
        response = client.post("/api/metrics/batch", data=body, content_type="application/json")
        assert response.status_code == 202 and response.json()["accepted"] == hosts, response.content

    post(-2)  # first contact: the hosts are created, not measured
    return _minimum(repeats, post)


def scenario_run(name: str) -> float:
    repeats = REPEATS[name]
    if name.startswith("snapshot-"):
        return _snapshot(int(name.split("-")[1]), repeats)
    if name.startswith("signed-"):
        return _signed(int(name.split("-")[1]), repeats)
    return _many_hosts(500, repeats)


def drive(args: argparse.Namespace) -> None:
    sides = {"old": (Path(args.old), args.old_db), "new": (Path(args.new), args.new_db)}
    for name in args.scenarios:
        runs: dict[str, list[float]] = {"old": [], "new": []}
        for _ in range(args.rounds):
            for side, (root, db) in sides.items():
                out = subprocess.run(
                    [sys.executable, str(HERE), "run", name, "--root", str(root.resolve()), "--db", db],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if out.returncode != 0:
                    raise SystemExit(f"{side} {name} failed:\n{out.stderr[-3000:]}")
                runs[side].append(float(out.stdout.split()[-1]))
        old, new = min(runs["old"]), min(runs["new"])
        each = {side: ", ".join(f"{v * 1000:.2f}" for v in values) for side, values in runs.items()}
        print(
            f"{name}: old {old * 1000:.2f} ms, new {new * 1000:.2f} ms, new/old {new / old:.3f} "
            f"(minima of {args.rounds} processes x {REPEATS[name]} runs; per process old {each['old']}; "
            f"new {each['new']})",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="one scenario in this process: print its minimum seconds")
    run.add_argument("scenario", choices=SCENARIOS)
    run.add_argument("--root", default=str(HERE.parents[1]))
    run.add_argument("--db", default="twin_ab")
    both = sub.add_parser("drive", help="alternate old and new checkouts, print the minima")
    both.add_argument("scenarios", nargs="+", choices=SCENARIOS)
    both.add_argument("--old", required=True)
    both.add_argument("--old-db", required=True)
    both.add_argument("--new", default=str(HERE.parents[1]))
    both.add_argument("--new-db", required=True)
    both.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.command == "drive":
        drive(args)
        return
    _setup(Path(args.root), args.db, open_mode=args.scenario == "batch-500-hosts")
    print(f"{scenario_run(args.scenario):.6f}")


if __name__ == "__main__":
    main()
