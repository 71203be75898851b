"""The runner: a thread in each server process that runs the jobs that are due.

Every process runs one (unless ``TWIN_JOBS_ENABLED`` is false, for an operator
who runs ``manage.py run_jobs --loop`` apart); claims in the database make each
due run happen exactly once across them. It is a thread rather than an asyncio
task because jobs are whole sync functions that talk to the database, and it
must not hold up the event loop that serves requests.
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from common.errors import database_trouble
from jobs.services import jobs_ensure, jobs_run_due

logger = logging.getLogger(__name__)

_started = threading.Lock()
_thread: threading.Thread | None = None
_stop = threading.Event()


def runner_tick() -> None:
    """One tick: run what is due, on a connection that is good and then given back."""
    close_old_connections()
    try:
        jobs_run_due(now=timezone.now())
    finally:
        connection.close()


def runner_loop(stop: threading.Event, tick_seconds: float) -> None:
    """Tick until ``stop`` is set; a failed tick (the database away) is logged and retried."""
    ensured = False
    while not stop.is_set():
        try:
            if not ensured:
                jobs_ensure(now=timezone.now())
                ensured = True
            runner_tick()
        except Exception as exc:
            logger.warning("background jobs: tick failed; retrying: %s", exc, exc_info=not database_trouble(exc))
            connection.close()
        stop.wait(tick_seconds)


def runner_ensure_started() -> None:
    """Start this process's runner thread once, when the ASGI application loads (daphne sends no lifespan events)."""
    global _thread
    if _thread is not None or not settings.TWIN_JOBS_ENABLED:
        return
    with _started:
        if _thread is not None:
            return
        _thread = threading.Thread(
            target=runner_loop,
            args=(_stop, settings.TWIN_JOBS_TICK_SECONDS),
            name="twin-jobs",
            daemon=True,
        )
        _thread.start()


def runner_stop() -> None:
    """Let the runner finish its tick and start no other (the server is stopping; the thread is a daemon)."""
    _stop.set()
