"""``python -m twinsite.serve [daphne options]``: daphne serving the twin, with its limits.

daphne refuses to *send* a websocket message larger than its
``--websocket-max-message-size`` (1 MiB by default, an autobahn rule that
covers both directions): a twin-state of about 2,000 hosts is larger, and
dashboards would be disconnected at every push. The twin raises the limit to
``TWIN_WS_MAX_MESSAGE_BYTES`` (32 MiB by default, about 60,000 hosts; beyond
that, use the delta stream). Incoming Socket.IO packets stay limited to 1 MB by
python-engineio.

daphne's own access log is off unless asked for (``--access-log``): its lines are
plain text whatever ``LOG_FORMAT`` says, and they carry query strings. The
``ops.requests`` logger writes one line per Django request instead (with its
request id), and nginx logs every request, Socket.IO's included.

A stop (SIGTERM, Ctrl-C) ends within ``TWIN_SHUTDOWN_SECONDS`` (8 s by
default) whatever is in flight (``stop_bounded``): while the loop still runs,
the job runner stops, requests in flight get most of the bound to finish, and
the events they published are sent; events published later are dropped and
counted (``common.events``); a thread still running at the bound is cut short
(its transaction rolls back, its agent sends the batch again). The log says
what was sent, dropped and cut.
"""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import ctypes.util
import logging
import os
import sys
import threading
import time

from daphne.cli import CommandLineInterface

APPLICATION = "twinsite.asgi:application"
DEFAULT_WS_MAX_MESSAGE_BYTES = 32 * 2**20
DEFAULT_SHUTDOWN_SECONDS = 8.0  # below compose's default stop_grace_period (10 s), after which it kills
# Of the bound: requests in flight may take this share to finish, the events' drain runs until the next.
REQUESTS_SHARE, DRAIN_SHARE = 0.6, 0.8
EXIT_CUT_SHORT = 1

log = logging.getLogger("twinsite.serve")
# glibc's mallopt parameter for the number of allocator arenas, and the number kept.
M_ARENA_MAX = -8
ARENA_MAX = 2


def malloc_arenas_limit() -> bool:
    """Have glibc keep at most ``ARENA_MAX`` allocator arenas (what ``MALLOC_ARENA_MAX=2`` does).

    Django runs each request's sync code on a thread of its own, and glibc gives
    threads arenas of their own (up to eight per core), each keeping what its
    threads freed. A burst of 32 requests inflating 10 MB bodies left the
    process about 300 MB larger for good; with two arenas, 20 MB
    (docs/reliability.md). Python's own lock serialises most allocations, so
    more arenas bought little. Returns False where the C library is not glibc.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        return bool(libc and libc.mallopt(M_ARENA_MAX, ARENA_MAX))
    except (OSError, AttributeError):
        return False


def daphne_arguments(extra: list[str]) -> list[str]:
    """daphne's command line: the twin's limits, then the caller's options, then the app."""
    limit = os.environ.get("TWIN_WS_MAX_MESSAGE_BYTES", str(DEFAULT_WS_MAX_MESSAGE_BYTES))
    access_log = [] if any(arg.startswith("--access-log") for arg in extra) else ["--access-log", os.devnull]
    return ["--websocket-max-message-size", limit, *access_log, *extra, APPLICATION]


def shutdown_seconds() -> float:
    raw = os.environ.get("TWIN_SHUTDOWN_SECONDS", str(DEFAULT_SHUTDOWN_SECONDS))
    try:
        seconds = float(raw)
    except ValueError:
        raise SystemExit(f"TWIN_SHUTDOWN_SECONDS must be a number of seconds, not {raw!r}") from None
    if seconds <= 0:
        raise SystemExit("TWIN_SHUTDOWN_SECONDS must be more than 0")
    return seconds


async def shutdown_drain(*, started: float, seconds: float) -> None:
    """On the serving loop, before it stops: finish what is in flight, within the bound.

    1. Stop the job runner (it finishes its tick, starts no other).
    2. Wait for sync views still running, until ``REQUESTS_SHARE`` of the bound:
       the events they publish on commit still reach the running loop.
    3. Send the events waiting and wait for the sends in flight, until
       ``DRAIN_SHARE`` of the bound; later events are dropped and counted.
    """
    from common.events import events_drain
    from jobs.runner import runner_stop
    from twinsite.handler import requests_in_flight

    runner_stop()
    in_flight = requests_in_flight()
    while requests_in_flight() and time.monotonic() < started + REQUESTS_SHARE * seconds:
        await asyncio.sleep(0.05)
    running = requests_in_flight()
    sent, dropped = await events_drain(timeout=max(0.1, started + DRAIN_SHARE * seconds - time.monotonic()))
    log.info(
        "stopping: %d requests were in flight, %d still run; %d events sent in the drain, %d dropped",
        in_flight,
        running,
        sent,
        dropped,
    )


def stop_bounded(seconds: float) -> None:
    """Drain before the reactor stops, and end the process by ``seconds`` after the stop began.

    daphne runs Twisted's reactor on the asyncio loop: a "before shutdown"
    trigger runs while the loop still serves, and the reactor waits for the
    Deferred it returns. After the reactor stopped, Python joins the threads
    left (a request thread finishing a batch); a daemon watchdog ends the
    process at the bound if one still holds it.
    """
    from twisted.internet import defer, reactor

    started: list[float] = []

    def before_shutdown() -> defer.Deferred:
        started.append(time.monotonic())
        loop = asyncio.get_event_loop()  # the reactor's loop: daphne sets it for this thread
        return defer.Deferred.fromFuture(
            asyncio.ensure_future(shutdown_drain(started=started[0], seconds=seconds), loop=loop)
        )

    def watchdog(deadline: float) -> None:
        time.sleep(max(0.0, deadline - time.monotonic()))
        from common.events import events_dropped

        main = threading.main_thread()
        held = [t.name for t in threading.enumerate() if t.is_alive() and not t.daemon and t is not main]
        log.error(
            "stop: %g s passed and %d threads still run (%s); exiting now: their requests roll back "
            "and their agents send again; %d events dropped",
            seconds,
            len(held),
            ", ".join(held) or "none",
            events_dropped(),
        )
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(EXIT_CUT_SHORT)

    def stopped() -> None:
        """After the reactor stopped (the loop is done): bound what Python's exit still waits for."""
        deadline = (started[0] if started else time.monotonic()) + seconds
        threading.Thread(target=watchdog, args=(deadline,), name="twin-stop-watchdog", daemon=True).start()

    def exited() -> None:
        from common.events import events_dropped

        log.info("stopped: every thread finished; %d events dropped in the stop", events_dropped())

    reactor.addSystemEventTrigger("before", "shutdown", before_shutdown)
    reactor.addSystemEventTrigger("after", "shutdown", stopped)
    atexit.register(exited)  # runs after Python joined the threads


if __name__ == "__main__":
    # Before daphne starts its threads: arenas are given out as threads first allocate.
    malloc_arenas_limit()
    stop_bounded(shutdown_seconds())
    CommandLineInterface().run(daphne_arguments(sys.argv[1:]))
