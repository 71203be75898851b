"""Figures 1 and 2 of ``bench.run`` alone (ingest), to compare two trees of the twin quickly.

    cd <tree> && BENCH_DATABASE_URL=postgres://…/twin_bench_x <venv>/bin/python /path/to/bench/ingest_figures.py

Run it from the root of the tree to measure (it imports that tree's code and
starts that tree's server); alternate the trees, each on a database of its own.
"""

from __future__ import annotations

import asyncio
import os
import sys

sys.path.insert(0, os.getcwd())

import aiohttp
from django.core.management import call_command

import bench.django_setup  # noqa: F401  (first: a fresh database, Django set up)
from bench.harness import ROOT, daphne, register
from bench.run import figure_ingest, figure_small_batches, results
from hosts.services import enrollment_key_create


async def main() -> None:
    (ROOT / "var").mkdir(exist_ok=True)
    call_command("migrate", verbosity=0)
    _, key = enrollment_key_create(name="bench")
    env = {
        "TWIN_AGENT_AUTH": "signed",
        "TWIN_PUBLIC_READ": "true",
        "DEBUG": "false",
        "TWIN_STALE_AFTER_SECONDS": "600",
        "TWIN_OFFLINE_AFTER_SECONDS": "1800",
    }
    with daphne("twinsite.asgi:application", **env) as server:
        async with aiohttp.ClientSession() as http:
            senders = [await register(http, server.url, key, f"bench-sender-{i}") for i in range(8)]
            small = [await register(http, server.url, key, f"bench-small-{i:02d}") for i in range(64)]
        await figure_ingest(server, senders, batches=25, rounds=3)
        await figure_small_batches(server, small, seconds=6, rounds=3)
    for r in results:
        print("RESULT", r["figure"], "|", r["measured"], "|", r["floor"], "|", r["ratio"])


if __name__ == "__main__":
    asyncio.run(main())
