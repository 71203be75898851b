"""The live side's own Prometheus metrics: clients by mode, what is sent to them, the channel layer's lag.

Recorded at the live side's boundaries with one call each: the emitter's public
methods (clients joining, switching mode, leaving; pushes and events sent), the
packet class python-socketio encodes with (the size of each event it encodes),
and the listener (the lag of each message off the channel layer).
docs/operations.md, "Reading the metrics", says how to read them.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from twin.instruments import snapshot_sent

# The Socket.IO events whose sending is counted (docs/api.md): the twin, and routed events.
TWIN_STATE_EVENT = "twin-state"
# A message's lag over the channel layer: sub-millisecond in one process, a few ms over Redis,
# seconds when the listener's loop is busy (a multi-megabyte encode).
LAG_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

LIVE_CLIENTS = Gauge(
    "twin_live_clients",
    "Socket.IO clients connected to /digital-twin, by mode: full (twin-state pushes) or delta (twin-delta).",
    ["mode"],
    multiprocess_mode="livesum",
)
LIVE_PUSHES = Counter(
    "twin_live_pushes",
    "Changed twins the feed pushed (one twin-state to the full room and one twin-delta to the delta room each).",
)
LIVE_SENT = Counter(
    "twin_live_messages_sent",
    "Socket.IO events sent to clients, one per recipient, by event (twin-state, twin-delta, host-status, ...).",
    ["event"],
)
LIVE_SENT_BYTES = Counter(
    "twin_live_sent_bytes",
    "Bytes of the Socket.IO events sent to clients (the encoded packet times its recipients), by event.",
    ["event"],
)
CHANNEL_LAG = Histogram(
    "twin_channel_layer_lag_seconds",
    "Time from a process sending an event message on the channel layer to this process's listener taking it "
    "(wall clocks: across machines, their skew is included).",
    buckets=LAG_BUCKETS,
)
CHANNEL_REJOINS = Counter(
    "twin_channel_layer_rejoins",
    "Times this process's listener found its events-group membership gone (a restarted Redis forgets every "
    "group) and joined again.",
)

_pushes = LIVE_PUSHES
_clients = {mode: LIVE_CLIENTS.labels(mode) for mode in ("full", "delta")}
# The size of the last packet encoded for each event. python-socketio encodes an
# event once per emit, whatever the number of recipients, and the emitter holds
# one lock around each emit: after an emit, this is that emit's packet.
_encoded_size: dict[str, int] = {}


def packet_encoded(data: Any, encoded: Any) -> None:
    """Note the size of an outgoing event packet (called by ``TwinPacket.encode``)."""
    if not (isinstance(data, list) and data and isinstance(data[0], str) and isinstance(encoded, str)):
        return
    # isascii() is a flag lookup in CPython: no copy for the usual all-ASCII JSON.
    size = len(encoded) if encoded.isascii() else len(encoded.encode())
    _encoded_size[data[0]] = size
    if data[0] == TWIN_STATE_EVENT:
        snapshot_sent(size)


def sent_record(event: str, recipients: int) -> None:
    """Count an emit of ``event`` that reached ``recipients`` clients, with its bytes."""
    if recipients:
        LIVE_SENT.labels(event).inc(recipients)
        LIVE_SENT_BYTES.labels(event).inc(recipients * _encoded_size.get(event, 0))


def push_record(*, state_event: str, state_to: int, delta_event: str, delta_to: int) -> None:
    """Count one push of the feed: the full state to ``state_to`` clients, the delta to ``delta_to``."""
    _pushes.inc()
    sent_record(state_event, state_to)
    sent_record(delta_event, delta_to)


def clients_observe(
    rooms: Mapping[Any, Collection[str]], *, full: str, delta: Collection[str], leaving: str | None = None
) -> None:
    """Set the clients by mode from the namespace's rooms (``leaving``: a client still in them, about to go).

    Delta clients are those of every delta room (whole documents, fields).
    """
    for mode, names in (("full", (full,)), ("delta", delta)):
        count = 0
        for room in names:
            members = rooms.get(room, ())
            count += len(members) - (leaving is not None and leaving in members)
        _clients[mode].set(count)


def channel_lag_observe(message: Mapping[str, Any]) -> None:
    """Record the lag of a message taken off the channel layer, when its sender stamped it."""
    sent_at = message.get("sent_at")
    if isinstance(sent_at, (int, float)):
        CHANNEL_LAG.observe(max(0.0, time.time() - sent_at))


def channel_rejoin_record() -> None:
    """Count one rejoin of the events group by this process's listener."""
    CHANNEL_REJOINS.inc()
