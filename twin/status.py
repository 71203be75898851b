"""Facts derived when read: a host's status and a link's throughput."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Protocol

from django.conf import settings


class HostStatus(StrEnum):
    """How alive a host looks, from the age of its last sample."""

    ONLINE = "online"
    STALE = "stale"
    OFFLINE = "offline"
    UNKNOWN = "unknown"


def host_status(*, last_seen: datetime | None, now: datetime) -> HostStatus:
    """``online`` while the last sample is fresh, then ``stale``, then ``offline``; ``unknown`` if never seen."""
    if last_seen is None:
        return HostStatus.UNKNOWN
    silence = (now - last_seen).total_seconds()
    if silence < settings.TWIN_STALE_AFTER_SECONDS:
        return HostStatus.ONLINE
    if silence < settings.TWIN_OFFLINE_AFTER_SECONDS:
        return HostStatus.STALE
    return HostStatus.OFFLINE


_LIVELINESS = [HostStatus.ONLINE, HostStatus.STALE, HostStatus.OFFLINE]


def virtual_status(*, own: HostStatus | None, neighbours: list[HostStatus]) -> HostStatus:
    """A virtual node (a switch) is as alive as its liveliest neighbour or its own poller's report.

    It is online while any linked host is online; ``unknown`` when nothing
    around it has ever reported.
    """
    known = [s for s in [own, *neighbours] if s is not None and s != HostStatus.UNKNOWN]
    return min(known, key=_LIVELINESS.index, default=HostStatus.UNKNOWN)


class CounterReadings(Protocol):
    """The last two counter readings of a host (``metrics.LatestMetrics`` has them)."""

    sample_time: datetime
    net_bytes_tx: int | None
    net_bytes_rx: int | None
    prev_sample_time: datetime | None
    prev_net_bytes_tx: int | None
    prev_net_bytes_rx: int | None


def link_throughput_gbps(readings: CounterReadings | None) -> float | None:
    """Gbit/s between the last two counter readings: (Δtx + Δrx) · 8 / Δt / 10⁹.

    ``None`` when there is no rate to give: fewer than two readings, no time
    between them, or a counter that went down (the agent restarted, or the
    counter wrapped). A wrong guess there would draw a spike or a negative rate.
    """
    if readings is None or readings.prev_sample_time is None:
        return None
    values = (readings.net_bytes_tx, readings.net_bytes_rx, readings.prev_net_bytes_tx, readings.prev_net_bytes_rx)
    if any(v is None for v in values):
        return None
    tx, rx, prev_tx, prev_rx = values  # type: ignore[misc]
    seconds = (readings.sample_time - readings.prev_sample_time).total_seconds()
    if seconds <= 0 or tx < prev_tx or rx < prev_rx:
        return None
    return (tx - prev_tx + rx - prev_rx) * 8 / seconds / 1e9
