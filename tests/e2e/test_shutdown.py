"""End to end: a server stopped under load exits within its bound and says what it dropped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import timedelta

import orjson
import pytest
from django.utils import timezone

from tests.conftest import sample_dict
from tests.e2e.conftest import ROOT, server_start

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

SHUTDOWN_SECONDS = 6
POSTERS = 8
SAMPLES_PER_BATCH = 300


def _poster(url: str, index: int, stop: threading.Event, statuses: list[int]) -> None:
    """One agent posting large batches back to back until the server goes (bounded: 60 batches)."""
    for sequence in range(60):
        if stop.is_set():
            return
        start = timezone.now() - timedelta(seconds=SAMPLES_PER_BATCH * (60 - sequence))
        samples = [
            sample_dict(f"load-{index:02d}", at=start + timedelta(seconds=i), cpu_load=float(i % 100))
            for i in range(SAMPLES_PER_BATCH)
        ]
        body = orjson.dumps({"agent_session": f"s-{index}", "sequence": sequence + 1, "samples": samples})
        request = urllib.request.Request(
            f"{url}/api/metrics/batch", data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                statuses.append(response.status)
        except (OSError, urllib.error.HTTPError):
            return  # the server stopped under it


def test_a_server_stopped_under_load_exits_within_its_bound_and_logs_what_it_dropped(
    transactional_db, tmp_path, channel_prefix
):
    server = server_start(tmp_path, CHANNEL_LAYER_PREFIX=channel_prefix, TWIN_SHUTDOWN_SECONDS=str(SHUTDOWN_SECONDS))
    stop = threading.Event()
    statuses: list[int] = []
    posters = [
        threading.Thread(target=_poster, args=(server.url, i, stop, statuses), daemon=True) for i in range(POSTERS)
    ]
    try:
        for poster in posters:
            poster.start()
        deadline = time.monotonic() + 30
        while statuses.count(202) < POSTERS and time.monotonic() < deadline:
            time.sleep(0.05)
        assert statuses.count(202) >= POSTERS, server.output()[-3000:]
        # Mid-load: every poster has a batch in flight now.
        server.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        code = server.process.wait(timeout=SHUTDOWN_SECONDS + 10)
        took = time.monotonic() - signalled
    finally:
        stop.set()
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()
    log = server.output()
    assert took <= SHUTDOWN_SECONDS + 2, f"{took:.1f} s to exit:\n{log[-3000:]}"
    assert "stopping: " in log and " events sent in the drain, " in log, log[-3000:]
    # Either every thread finished (exit 0) or the bound cut the last ones short, saying so (exit 1).
    finished = "stopped: every thread finished;" in log
    cut = "threads still run" in log and "exiting now" in log
    assert (code, finished) == (0, True) or (code, cut) == (1, True), (code, log[-3000:])
    assert "cannot schedule new futures" not in log


STUCK_SCRIPT = """
import logging, os, threading, time
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "twinsite.settings")
django.setup()
import daphne.server  # installs the asyncio reactor, as daphne's command line does
from twisted.internet import reactor
from twinsite.serve import stop_bounded

stop_bounded(1.0)
# A request thread that will not finish (a view stuck on a lock): not a daemon, Python's exit waits for it.
threading.Thread(target=time.sleep, args=(60,), name="request_stuck").start()
reactor.callLater(0.2, reactor.stop)
reactor.run(installSignalHandlers=False)
"""


def test_a_thread_that_never_finishes_is_cut_short_at_the_bound_and_named_in_the_log(tmp_path):
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", STUCK_SCRIPT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3"},
    )
    took = time.monotonic() - started
    assert done.returncode == 1, done.stdout + done.stderr
    assert took < 10, took  # Django's start included; the stop itself is bounded at 1 s
    assert "threads still run (request_stuck)" in done.stdout + done.stderr
    assert "stopping: 0 requests were in flight" in done.stdout + done.stderr
