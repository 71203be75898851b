"""The twin feed: rebuilds the twin, versions it, diffs it and decides when to push.

It knows nothing of Socket.IO: it is given a way to build the twin, a place to
push (``FeedOutput``) and a clock, so tests drive it in process with a fake
clock and a fake output (tests/twin/live/test_feed.py).

The rules, each a reason the feed exists:
1. Changes are coalesced. Full states go out at most once every ``min_gap``
   seconds, however many changes arrive (dashboards cannot use more, and a
   5 MB state per batch would drown them). Deltas, small by design, have a
   shorter gap of their own (``delta_min_gap``, stretched to a few times the
   average step's work, building and pushing, so the feed never takes more than
   a share of the process): a change arriving just after a push reaches delta listeners
   within that gap instead of waiting for the next full-state slot, which
   put up to 500 ms on a delta's latency (bench/live_shapes.py).
2. The last change is always pushed, on both streams: a change that arrives
   during a rebuild leaves the feed dirty, so another rebuild follows, and a
   state built between two full-state slots goes to full listeners at the
   next slot.
3. A rebuild happens at least every ``refresh_seconds`` while someone listens:
   statuses change with the clock alone, and a change event the channel
   layer dropped is healed by the next refresh.
4. Deltas are relative to the last pushed state and carry consecutive
   versions; a state equal to the last pushed one is not pushed.
5. After a quiet spell (nobody listening), the feed forgets what it pushed:
   the next listeners start from the twin of their time, not from an old push
   whose first delta would carry the whole fleet.
6. A delta of more than ``delta_max_items`` hosts and links goes out as a
   resync signal instead (``twin.delta.delta_resync_signal``): a change that
   touches the whole fleet was a 5 MB delta copied into every delta
   listener's socket buffer at once (about 1 GB with 200 listeners at 10,000
   hosts); re-reading the state instead happens in the starting-state rounds,
   a few clients at a time.
7. Delta listeners of the fields form (``twin.delta.delta_fields``) get the
   same change as the keys that changed, and a resync signal only when that
   is more than ``FIELD_DELTA_STATE_SHARE`` of the state's bytes: a status
   flip of 10,000 hosts is about 0.5 MB of fields, a tenth of the state, and
   goes out as one delta (it was 8-10 s of starting states, five clients
   every 0.1 s, for 200 listeners).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from common.errors import database_trouble
from twin.delta import (
    TwinDelta,
    delta_bytes,
    delta_fields,
    delta_is_empty,
    delta_resync_signal,
    delta_size,
    state_diff,
)
from twin.snapshot import TwinState

logger = logging.getLogger(__name__)

# Deltas may follow each other this closely (rule 1)...
DELTA_MIN_GAP_SECONDS = 0.05
# ...but at least this many times a step's work (build, diff, push) apart, so
# that the feed takes at most a quarter of the process (a 10,000-host build
# takes 100-150 ms: its deltas keep about the full states' gap). The work is
# averaged (this weight for the newest step): one slow step, a garbage
# collection or a busy loop, stretched the next gap to 300 ms and made the
# latency's tail (bench/live_shapes.py, figure 7).
DELTA_GAP_BUILDS = 3.0
WORK_WEIGHT = 0.2
# Beyond this many hosts and links a delta is sent as a resync signal (rule 6):
# about 500 kB of JSON, a tenth of a 10,000-host state.
DELTA_MAX_ITEMS = 1000
# Fields-form deltas (rule 7) go out unless larger than this share of the state
# (measured only beyond FIELD_DELTA_FREE_BYTES, so that small deltas cost no
# encoding of the state; the state's bytes a host or link are measured once per
# fleet size, as encoding 5 MB took 30-150 ms of the loop per step). A quarter: re-reading the state costs each client
# four times as much, and 200 clients' copies of the delta in their sockets
# stay near the memory of five starting states in flight.
FIELD_DELTA_STATE_SHARE = 0.25
FIELD_DELTA_FREE_BYTES = 64 * 1024
# Slack on "is it time yet": a wait until an instant may wake a rounding error early.
EPSILON = 1e-6


class FeedOutput(Protocol):
    """Where the feed pushes: full-state listeners get ``state``, delta listeners ``delta`` (any may be None).

    Delta listeners of the fields form get ``field_delta`` instead (the same
    version, only the keys that changed).
    """

    async def push(
        self, *, state: TwinState | None, delta: TwinDelta | None, field_delta: TwinDelta | None = None
    ) -> None: ...

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
        delta_min_gap: float = DELTA_MIN_GAP_SECONDS,
        delta_max_items: int = DELTA_MAX_ITEMS,
        clock: Clock | None = None,
    ) -> None:
        self._build = build
        self._output = output
        self._min_gap = min_gap
        self._delta_min_gap = min(delta_min_gap, min_gap)
        self._delta_max_items = delta_max_items
        self._refresh_seconds = refresh_seconds
        self._clock = clock or MonotonicClock()
        self._dirty = asyncio.Event()
        # The last state built and when; the last state pushed and its version; an average step's work.
        self.state: TwinState | None = None
        self._built_at = float("-inf")
        self._work_seconds = 0.0
        # The encoded state's bytes per host and link, and the count it was measured at (rule 7).
        self._item_bytes: tuple[int, float] | None = None
        self.published: TwinState | None = None
        self.version = 0
        # When each stream was last pushed, when the loop last stepped, and
        # whether full listeners are owed a state built since their last push.
        self._last_delta_push = float("-inf")
        self._last_full_push = float("-inf")
        self._stepped_at = self._clock.now()
        self._full_owed = False
        # Held while a state is pushed, so a listener's starting state and the
        # deltas that follow it never interleave.
        self.push_lock = asyncio.Lock()

    def changed(self) -> None:
        """Something committed changed the twin: rebuild soon."""
        self._dirty.set()

    def delta_gap(self) -> float:
        """The shortest time between two deltas now: rule 1's gap, stretched for slow steps (on average)."""
        return min(self._min_gap, max(self._delta_min_gap, DELTA_GAP_BUILDS * self._work_seconds))

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

        The delta goes out at once; the state goes to full listeners only if
        their gap has passed, otherwise at their next slot (``flush``). With
        no listener, nothing is built and the pushed state is forgotten (rule 5).
        """
        self._dirty.clear()
        self._stepped_at = started = self._clock.now()
        if not self._output.has_listeners():
            self.published = None
            self._full_owed = False
            return False
        state = await self._rebuild()
        async with self.push_lock:
            assert self.published is not None
            delta = state_diff(before=self.published, after=state, version=self.version + 1)
            if delta_is_empty(delta):
                return False
            field_delta = self._field_delta(delta, before=self.published, after=state)
            if delta_size(delta) > self._delta_max_items:
                delta = delta_resync_signal(after=state, version=self.version + 1)
            self.version += 1
            self.published = state
            now = self._clock.now()
            full_due = now - self._last_full_push >= self._min_gap - EPSILON
            self._full_owed = not full_due
            await self._output.push(state=state if full_due else None, delta=delta, field_delta=field_delta)
        work = self._clock.now() - started
        # The first step sets the average; later ones move it by their weight.
        self._work_seconds += (work - self._work_seconds) * (WORK_WEIGHT if self._work_seconds else 1.0)
        self._last_delta_push = now
        if full_due:
            self._last_full_push = now
        return True

    def _field_delta(self, delta: TwinDelta, *, before: TwinState, after: TwinState) -> TwinDelta:
        """``delta`` in the fields form, or a resync signal if even that is too large (rule 7)."""
        fields = delta_fields(delta=delta, before=before)
        size = delta_bytes(fields)
        if size > FIELD_DELTA_FREE_BYTES and size > FIELD_DELTA_STATE_SHARE * self._state_bytes(after):
            return delta_resync_signal(after=after, version=delta["version"])
        return fields

    def _state_bytes(self, state: TwinState) -> float:
        """The state's encoded size, from its bytes a host or link, measured again when the fleet's size changes."""
        items = len(state["hosts"]) + len(state["links"])
        if self._item_bytes is None or self._item_bytes[0] != items:
            self._item_bytes = (items, delta_bytes(state) / max(items, 1))
        return self._item_bytes[1] * items

    async def flush(self) -> bool:
        """Push the newest state to full listeners if they are owed one and their gap has passed; True if pushed."""
        now = self._clock.now()
        if not self._full_owed or now - self._last_full_push < self._min_gap - EPSILON:
            return False
        self._full_owed = False
        if not self._output.has_listeners() or self.state is None:
            return False
        await self._output.push(state=self.state, delta=None)
        self._last_full_push = now
        return True

    async def cycle(self) -> None:
        """One turn of the loop: wait for a change, the refresh or a full-state slot; keep the gaps; step or flush."""
        now = self._clock.now()
        timeout = self._stepped_at + self._refresh_seconds - now
        if self._full_owed:
            timeout = min(timeout, self._last_full_push + self._min_gap - now)
        changed = await self._clock.wait(self._dirty, max(0.0, timeout))
        try:
            if changed or self._clock.now() - self._stepped_at >= self._refresh_seconds - EPSILON:
                if self._output.has_listeners():
                    gap = self._last_delta_push + self.delta_gap() - self._clock.now()
                    if gap > 0:
                        await self._clock.sleep(gap)
                await self.step()
            await self.flush()
        except Exception as exc:
            # A lost lock race (a partition dropped meanwhile) or a database away needs no traceback.
            logger.warning(
                "twin snapshot failed; retrying at the next interval: %s", exc, exc_info=not database_trouble(exc)
            )

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
