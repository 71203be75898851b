"""Exponential backoff with jitter, honouring the server's ``Retry-After``."""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """Delays between failed tries: ``base * 2**n``, capped, half of it random.

    "Equal jitter": half the delay is fixed, so a failing agent never hammers
    the server, and half is random, so a fleet that lost its server at the same
    moment does not come back in lockstep. A ``Retry-After`` from the server is
    a floor, spread by up to a tenth more so a throttled fleet also scatters;
    it is bounded by ``cap`` (the configuration's ``backoff_max``) as every
    other delay, so a ``Retry-After`` of ``inf`` or 10**12 seconds cannot
    silence the agent.
    """

    def __init__(self, *, base: float = 1.0, cap: float = 60.0, rng: Callable[[], float] = random.random) -> None:
        self.base = base
        self.cap = cap
        self.rng = rng
        self.failures = 0

    def next_delay(self, *, retry_after: float | None = None) -> float:
        """Count one more failure and return how long to wait before the next try."""
        self.failures += 1
        ceiling = min(self.cap, self.base * 2 ** min(self.failures - 1, 30))
        delay = ceiling / 2 + self.rng() * ceiling / 2
        if retry_after is not None and retry_after == retry_after:  # not NaN
            delay = max(delay, min(max(0.0, retry_after), self.cap) * (1 + self.rng() / 10))
        return delay

    def reset(self) -> None:
        self.failures = 0
