"""The twin feed: rebuilds the twin, versions it, diffs it and decides when to push.

It knows nothing of Socket.IO: it is given a way to build the twin, a place to
push (``FeedOutput``) and a clock, so tests drive it in process with a fake
clock and a fake output (tests/twin/live/test_feed.py).

The rules, each a reason the feed exists:
1. Changes are coalesced: at most one push every ``min_gap`` seconds, however
   many changes arrive (dashboards cannot use more, and a 5 MB state per
   batch would drown them).
2. The last change is always pushed: a change that arrives during a rebuild
   leaves the feed dirty, so another rebuild follows.
3. A rebuild happens at least every ``refresh_seconds`` while someone listens:
   statuses change with the clock alone, and a change event the channel
   layer dropped is healed by the next refresh.
4. Deltas are relative to the last pushed state and carry consecutive
   versions; a state equal to the last pushed one is not pushed.
5. After a quiet spell (nobody listening), the feed forgets what it pushed:
   the next listeners start from the twin of their time, not from an old push
   whose first delta would carry the whole fleet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from twin.delta import TwinDelta, delta_is_empty, state_diff
from twin.snapshot import TwinState

logger = logging.getLogger(__name__)


class FeedOutput(Protocol):
    """Where the feed pushes: every full-state listener gets ``state``, every delta listener ``delta``."""

    async def push(self, *, state: TwinState, delta: TwinDelta) -> None: ...

    def has_listeners(self) -> bool: ...


class Clock(Protocol):
    """Time as the feed sees it; ``asyncio`` in a server, virtual in tests."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...

    async def wait(self, event: asyncio.Event, timeout: float) -> bool:
        """Wait for ``event`` at most ``timeout`` seconds; True if it was set."""
        ...


class MonotonicClock:
    """The real clock."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def wait(self, event: asyncio.Event, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
        return event.is_set()


class TwinFeed:
    """The current twin, the last pushed one and its version, and the push loop."""

    def __init__(
        self,
        *,
        build: Callable[[], Awaitable[TwinState]],
        output: FeedOutput,
        min_gap: float,
        refresh_seconds: float,
        clock: Clock | None = None,
    ) -> None:
        self._build = build
        self._output = output
        self._min_gap = min_gap
        self._refresh_seconds = refresh_seconds
        self._clock = clock or MonotonicClock()
        self._dirty = asyncio.Event()
        # The last state built and when; the last state pushed and its version.
        self.state: TwinState | None = None
        self._built_at = float("-inf")
        self.published: TwinState | None = None
        self.version = 0
        self._last_push = float("-inf")
        # Held while a state is pushed, so a listener's starting state and the
        # deltas that follow it never interleave.
        self.push_lock = asyncio.Lock()

    def changed(self) -> None:
        """Something committed changed the twin: rebuild soon."""
        self._dirty.set()

    async def current(self) -> TwinState:
        """The state for a new full-state listener: the last one built if still current."""
        fresh = self._clock.now() - self._built_at < self._refresh_seconds
        if self.state is None or self._dirty.is_set() or not fresh:
            await self._rebuild()
        assert self.state is not None
        return self.state

    async def versioned(self) -> TwinState:
        """The state for a new delta listener: the last pushed, with the version the next delta builds on.

        Call it holding ``push_lock``, so no push slips between this state and
        the listener joining the delta audience.
        """
        if self.published is None:
            await self.current()
            if self.published is None:  # the state was still fresh: no rebuild rebased it
                self._rebase()
        return {**self.published, "version": self.version}  # type: ignore[typeddict-unknown-key]

    async def step(self) -> bool:
        """Rebuild and push if the twin differs from the last push; True if pushed.

        With no listener, nothing is built and the pushed state is forgotten (rule 5).
        """
        self._dirty.clear()
        if not self._output.has_listeners():
            self.published = None
            return False
        state = await self._rebuild()
        async with self.push_lock:
            assert self.published is not None
            delta = state_diff(before=self.published, after=state, version=self.version + 1)
            if delta_is_empty(delta):
                return False
            self.version += 1
            self.published = state
            await self._output.push(state=state, delta=delta)
        self._last_push = self._clock.now()
        return True

    async def cycle(self) -> None:
        """One turn of the loop: wait for a change or the refresh interval, keep the gap, step."""
        await self._clock.wait(self._dirty, self._refresh_seconds)
        if self._output.has_listeners():
            gap = self._last_push + self._min_gap - self._clock.now()
            if gap > 0:
                await self._clock.sleep(gap)
        try:
            await self.step()
        except Exception:
            logger.warning("twin snapshot failed; retrying at the next interval", exc_info=True)

    async def run(self) -> None:
        """The push loop of a server process; runs until cancelled."""
        while True:
            await self.cycle()

    async def _rebuild(self) -> TwinState:
        state = await self._build()
        self.state, self._built_at = state, self._clock.now()
        if self.published is None:
            self._rebase()
        return state

    def _rebase(self) -> None:
        """Make the current state the one deltas build on, under a version nobody has seen."""
        self.version += 1
        self.published = self.state
