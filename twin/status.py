"""Facts derived when read: a host's status, from its last contact and the clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum

from django.conf import settings


class HostStatus(StrEnum):
    """How alive a host looks, from the age of its last sample."""

    ONLINE = "online"
    STALE = "stale"
    OFFLINE = "offline"
    UNKNOWN = "unknown"


def status_clock(*, now: datetime) -> Callable[[datetime | None], HostStatus]:
    """``host_status`` for many hosts at one instant: the thresholds are worked out once."""
    stale_from = now - timedelta(seconds=settings.TWIN_STALE_AFTER_SECONDS)
    offline_from = now - timedelta(seconds=settings.TWIN_OFFLINE_AFTER_SECONDS)

    def status_of(last_seen: datetime | None) -> HostStatus:
        if last_seen is None:
            return HostStatus.UNKNOWN
        if last_seen > stale_from:
            return HostStatus.ONLINE
        if last_seen > offline_from:
            return HostStatus.STALE
        return HostStatus.OFFLINE

    return status_of


def host_status(*, last_seen: datetime | None, now: datetime) -> HostStatus:
    """``online`` while the last sample is fresh, then ``stale``, then ``offline``; ``unknown`` if never seen."""
    return status_clock(now=now)(last_seen)


_LIVELINESS = [HostStatus.ONLINE, HostStatus.STALE, HostStatus.OFFLINE]


def virtual_status(*, own: HostStatus | None, neighbours: list[HostStatus]) -> HostStatus:
    """A virtual node (a switch) is as alive as its liveliest neighbour or its own poller's report.

    It is online while any linked host is online; ``unknown`` when nothing
    around it has ever reported.
    """
    known = [s for s in [own, *neighbours] if s is not None and s != HostStatus.UNKNOWN]
    return min(known, key=_LIVELINESS.index, default=HostStatus.UNKNOWN)
