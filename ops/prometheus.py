"""The Prometheus side: ops' own metrics, the registry it exposes, and who may read it.

Domain apps define their own metrics with ``prometheus_client`` at module level
(see docs/operations.md, "Metrics"); they register themselves, and ``/metrics``
exposes them with these. Ops defines only what needs no domain code: HTTP
requests by view, status and latency, the database pools, and the process.

With several server processes on one machine, set ``PROMETHEUS_MULTIPROC_DIR``
to a directory they share (emptied before they start): each process then
writes its values to files there, and any process's ``/metrics`` adds them up
(prometheus_client's multiprocess mode). Its limits shape what is here:
custom collectors and ``Gauge.set_function`` do not work across processes, so
pool and process figures are plain gauges that each process refreshes itself,
when it is scraped and at most every ``REFRESH_SECONDS`` while it serves requests.
"""

from __future__ import annotations

import atexit
import contextlib
import hmac
import ipaddress
import os
import re
import time
from typing import Any

from django.conf import settings
from django.db import connections
from django.http import HttpRequest
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client.exposition import choose_encoder
from prometheus_client.process_collector import ProcessCollector

from common.processes import process_running

MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
REFRESH_SECONDS = 10.0

# --- HTTP ------------------------------------------------------------------------
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Latencies from a static file (sub-millisecond) to a 10,000-host snapshot (about 150 ms) and beyond.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "twin_http_requests",
    "HTTP requests answered by Django, by view (URL name), method and status.",
    ["view", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "twin_http_request_duration_seconds",
    "Time from a request entering Django's middleware to its response leaving it, by view and method.",
    ["view", "method"],
    buckets=LATENCY_BUCKETS,
)

# --- Database pools (psycopg_pool, PostgreSQL only) -------------------------------------
DB_POOL_CONNECTIONS = Gauge(
    "twin_db_pool_connections",
    "Open connections of the PostgreSQL pools, idle or in use.",
    ["database", "state"],
    multiprocess_mode="livesum",
)
DB_POOL_MAX = Gauge(
    "twin_db_pool_max_connections", "Most connections the pools may open.", ["database"], multiprocess_mode="livesum"
)
DB_POOL_WAITING = Gauge(
    "twin_db_pool_waiting_requests",
    "Threads waiting for a pooled connection right now.",
    ["database"],
    multiprocess_mode="livesum",
)
DB_POOL_REQUESTS = Counter("twin_db_pool_requests", "Connections asked of the pools.", ["database"])
DB_POOL_WAIT = Counter("twin_db_pool_wait_seconds", "Time spent waiting for a pooled connection, summed.", ["database"])
DB_POOL_REQUEST_ERRORS = Counter(
    "twin_db_pool_request_errors", "Requests for a connection that failed (timed out or refused).", ["database"]
)
DB_POOL_CONNECT_ERRORS = Counter(
    "twin_db_pool_connection_errors", "Attempts of the pools to open a connection that failed.", ["database"]
)

# --- The process, in multiprocess mode ---------------------------------------------
# In one process prometheus_client's own ProcessCollector reports these (as
# process_*); a collector cannot work across processes, so each process
# publishes its own under a pid label, removed when it exits.
PROCESS_GAUGES = {
    name: Gauge(f"twin_{name}", text, ["pid"], multiprocess_mode="liveall")
    for name, text in {
        "process_resident_memory_bytes": "Resident memory of each server process.",
        "process_cpu_seconds": "CPU time used by each server process, user and system.",
        "process_open_fds": "Open file descriptors of each server process.",
        "process_start_time_seconds": "Start time of each server process, in Unix time.",
    }.items()
}
_process_collector = ProcessCollector(registry=None)

_last_refresh = 0.0
_pool_seen: dict[str, dict[str, int]] = {}


def multiprocess_exit_register() -> None:
    """In multiprocess mode, drop this process's live gauges when it exits (daphne has no hook)."""
    if MULTIPROCESS_DIR:
        atexit.register(prometheus_multiprocess.mark_process_dead, os.getpid(), MULTIPROCESS_DIR)


def db_pools_refresh() -> None:
    """Copy the pools' figures into the gauges; add their counters' growth since the last refresh."""
    for alias in connections:
        wrapper = connections[alias]
        # The class-level registry, not ``wrapper.pool``: that property would open a pool.
        pool = getattr(type(wrapper), "_connection_pools", {}).get(alias)
        if pool is None:
            continue
        stats = pool.get_stats()
        size, idle = stats.get("pool_size", 0), stats.get("pool_available", 0)
        DB_POOL_CONNECTIONS.labels(alias, "idle").set(idle)
        DB_POOL_CONNECTIONS.labels(alias, "in_use").set(max(size - idle, 0))
        DB_POOL_MAX.labels(alias).set(stats.get("pool_max", 0))
        DB_POOL_WAITING.labels(alias).set(stats.get("requests_waiting", 0))
        seen = _pool_seen.setdefault(alias, {})
        for key, counter, scale in (
            ("requests_num", DB_POOL_REQUESTS, 1),
            ("requests_wait_ms", DB_POOL_WAIT, 1000),
            ("requests_errors", DB_POOL_REQUEST_ERRORS, 1),
            ("connections_errors", DB_POOL_CONNECT_ERRORS, 1),
        ):
            value = stats.get(key, 0)
            # A smaller figure means a new pool (closed and reopened): its whole count is new.
            grown = value - seen.get(key, 0) if value >= seen.get(key, 0) else value
            if grown:
                counter.labels(alias).inc(grown / scale)
            seen[key] = value


def process_refresh() -> None:
    """Publish this process's memory, CPU, descriptors and start time (multiprocess mode only)."""
    pid = str(os.getpid())
    for family in _process_collector.collect():
        gauge = PROCESS_GAUGES.get(family.name)
        if gauge is not None and family.samples:
            gauge.labels(pid).set(family.samples[0].value)


def metrics_refresh() -> None:
    """Bring this process's sampled gauges up to date."""
    global _last_refresh
    _last_refresh = time.monotonic()
    db_pools_refresh()
    if MULTIPROCESS_DIR:
        process_refresh()


def metrics_refresh_due() -> None:
    """In multiprocess mode, refresh at most every ``REFRESH_SECONDS``: called on every request.

    Another process answers the scrape, so each process keeps its own figures
    fresh while it works. In one process the scrape itself refreshes them.
    """
    if MULTIPROCESS_DIR and time.monotonic() - _last_refresh >= REFRESH_SECONDS:
        metrics_refresh()


# The files of one process's live gauges (prometheus_client names them gauge_<mode>_<pid>.db).
_LIVE_GAUGE_FILE = re.compile(r"gauge_live(?:sum|all|max|min|mostrecent)_(\d+)\.db")


def multiprocess_dead_forget(directory: str = MULTIPROCESS_DIR) -> list[int]:
    """Drop the live gauges of processes that ended without saying so; return their pids.

    A process that exits drops its own (``multiprocess_exit_register``), but one
    killed with SIGKILL (the OOM killer, a supervisor's hard stop) runs no exit
    hook: its last values (its Socket.IO clients, its pool's connections, its
    memory) stayed in the shared directory, and every other process's
    ``/metrics`` added them in for good. The directory is shared by processes of
    one machine (docs/configuration.md), so a pid that no longer runs here is
    gone. Counters and histograms of the dead are kept: their totals still count.
    """
    dead = set()
    for name in os.listdir(directory):
        match = _LIVE_GAUGE_FILE.fullmatch(name)
        if match and int(match.group(1)) != os.getpid() and not process_running(int(match.group(1))):
            dead.add(int(match.group(1)))
    for pid in dead:
        # Another process's scrape may be dropping the same files at the same moment.
        with contextlib.suppress(FileNotFoundError):
            prometheus_multiprocess.mark_process_dead(pid, directory)
    return sorted(dead)


def metrics_registry() -> CollectorRegistry:
    """What ``/metrics`` exposes: every process's files in multiprocess mode, else this process's registry.

    In multiprocess mode the live gauges of processes that died unannounced are dropped first.
    """
    if MULTIPROCESS_DIR:
        multiprocess_dead_forget()
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry, path=MULTIPROCESS_DIR)
        return registry
    return REGISTRY


def metrics_render(accept: str | None) -> tuple[bytes, str]:
    """The exposition and its content type: Prometheus text, or OpenMetrics when the scraper asks for it."""
    metrics_refresh()
    encoder, content_type = choose_encoder(accept or "")
    return encoder(metrics_registry()), content_type


def metrics_access(request: HttpRequest) -> tuple[bool, str]:
    """Whether ``request`` may read ``/metrics``, and why not.

    Allowed with ``Authorization: Bearer <TWIN_METRICS_TOKEN>`` when a token is
    set, or from an address in ``TWIN_METRICS_ALLOW``. The address is the
    connection's peer (REMOTE_ADDR), never a forwarded header a client could
    write; behind a proxy that is the proxy, which is why the shipped nginx
    configuration refuses ``/metrics`` itself.
    """
    token: str = settings.TWIN_METRICS_TOKEN
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return True, ""
    networks: list[Any] = settings.TWIN_METRICS_ALLOW_NETWORKS
    try:
        peer = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        peer = None
    if peer is not None and any(peer in network for network in networks):
        return True, ""
    if token:
        return False, "Send Authorization: Bearer <TWIN_METRICS_TOKEN>, or scrape from TWIN_METRICS_ALLOW."
    return False, "Scrape from an address in TWIN_METRICS_ALLOW (loopback by default)."
