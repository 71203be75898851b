"""The snapshot's own Prometheus metrics: how long a build takes, and how large the twin is.

Recorded where a snapshot is asked for (the HTTP view, the live feed's build
call), never inside ``twin.snapshot`` itself. docs/operations.md, "Reading the
metrics", says how to read them.
"""

from __future__ import annotations

import time

from prometheus_client import Gauge, Histogram

from twin.snapshot import TwinState

# From a handful of hosts (a few ms) to 10,000 hosts and links on a loaded machine.
BUILD_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

SNAPSHOT_BUILD_SECONDS = Histogram(
    "twin_snapshot_build_seconds",
    "Time to build the twin document from the database (not its encoding), by reader: "
    "http (GET /api/twin/state), http_at (the twin at a past time), live (the Socket.IO feed).",
    ["reader"],
    buckets=BUILD_SECONDS_BUCKETS,
)
SNAPSHOT_HOSTS = Gauge("twin_snapshot_hosts", "Hosts in the last twin document built.", multiprocess_mode="mostrecent")
SNAPSHOT_BYTES = Gauge(
    "twin_snapshot_bytes",
    "Encoded size of the last twin document sent (an HTTP body or a twin-state packet).",
    multiprocess_mode="mostrecent",
)
_BUILD_BY_READER = {reader: SNAPSHOT_BUILD_SECONDS.labels(reader) for reader in ("http", "http_at", "live")}


def snapshot_observe(state: TwinState, *, started: float, reader: str) -> TwinState:
    """Record a build that began at ``started`` (``time.perf_counter()``); hand ``state`` back."""
    _BUILD_BY_READER[reader].observe(time.perf_counter() - started)
    if reader != "http_at":
        SNAPSHOT_HOSTS.set(len(state["hosts"]))
    return state


def snapshot_sent(size: int) -> None:
    """Record the encoded size of a twin document sent."""
    SNAPSHOT_BYTES.set(size)
