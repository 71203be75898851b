"""Rate limits counted in the shared cache (Redis), that never fail a request when it is gone.

DRF's ``SimpleRateThrottle`` reads and writes its counters in Django's cache;
with Redis stopped, the read raises and the request answered 500 (issue 24).
A limit is a guard, not the service: when the shared cache cannot be reached,
each process counts on its own (``LOCAL_COUNTERS``), so a client may get up to
one limit per process for the outage, and nothing else changes. The first
failure of an outage is logged once as a warning, the return once; every
decision taken locally is counted (``twin_rate_limit_local_decisions_total``),
and ``/readyz`` names the cache while it is unreachable (``ops.checks``).

While the cache is down, it is tried again only every ``RETRY_SECONDS``: a
Redis that hangs rather than refuses would otherwise cost every request its
socket timeout.
"""

from __future__ import annotations

import logging
import threading
import time

from django.core.cache import cache as shared_cache
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.locmem import LocMemCache
from prometheus_client import Counter
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

logger = logging.getLogger(__name__)

# How long, after a failure, the shared cache is left alone before it is tried again.
RETRY_SECONDS = 5.0

# This process's counters while the shared cache is away; bounded like any LocMemCache.
LOCAL_COUNTERS = LocMemCache("twin-rate-limit-local", {"OPTIONS": {"MAX_ENTRIES": 10_000}})

RATE_LIMIT_LOCAL_DECISIONS = Counter(
    "twin_rate_limit_local_decisions",
    "Rate-limit decisions taken on this process's own counters because the shared cache (Redis) "
    "could not be reached, by scope (ingest: agents' batches).",
    ["scope"],
)


class SharedCacheOutage:
    """Whether the shared cache is considered down, since when, and when to try it again (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.down_since: float | None = None
        self._retry_at = 0.0

    def usable(self) -> bool:
        """True unless the cache failed less than ``RETRY_SECONDS`` ago."""
        return self.down_since is None or time.monotonic() >= self._retry_at

    def failed(self, exc: BaseException) -> None:
        """A read or write failed: log once per outage, and leave the cache alone for a while."""
        now = time.monotonic()
        with self._lock:
            first = self.down_since is None
            if first:
                self.down_since = now
            self._retry_at = now + RETRY_SECONDS
        if first:
            logger.warning(
                "the shared cache (Redis) cannot be reached (%s: %s): rate limits are counted per process "
                "until it answers again",
                type(exc).__name__,
                exc,
            )

    def answered(self) -> None:
        """A read and write went through: an outage, if there was one, is over."""
        if self.down_since is None:
            return
        with self._lock:
            since, self.down_since = self.down_since, None
        if since is not None:
            logger.info(
                "the shared cache (Redis) answers again after %.1f s: rate limits are shared again",
                time.monotonic() - since,
            )


OUTAGE = SharedCacheOutage()


def rate_limits_forget() -> None:
    """Forget this process's counters and any outage (a test's fresh start)."""
    LOCAL_COUNTERS.clear()
    OUTAGE.down_since = None


class SharedRateThrottle(SimpleRateThrottle):
    """``SimpleRateThrottle`` on the shared cache, falling back to this process's counters when it fails."""

    cache: BaseCache = shared_cache

    def allow_request(self, request: Request, view: APIView) -> bool:
        if OUTAGE.usable():
            try:
                allowed = super().allow_request(request, view)
            except Exception as exc:
                # Any failure of the cache client (refused, timed out, reset): the
                # request must not pay for a guard that cannot count.
                OUTAGE.failed(exc)
            else:
                OUTAGE.answered()
                return allowed
        return self._allow_locally(request, view)

    def _allow_locally(self, request: Request, view: APIView) -> bool:
        RATE_LIMIT_LOCAL_DECISIONS.labels(self.scope or "").inc()
        self.cache = LOCAL_COUNTERS
        return super().allow_request(request, view)
