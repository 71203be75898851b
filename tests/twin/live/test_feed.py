"""twin.live.feed: coalescing, both streams' gaps, the last change, quiet spells, versions, resync signals.

All on a virtual clock: no server and no real time; the feed is driven by a clock whose time moves
only when the feed sleeps or waits, with changes scheduled at virtual instants.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from typing import Any

import pytest

from twin.delta import delta_apply
from twin.live import feed as feed_module
from twin.live.feed import DELTA_GAP_BUILDS, DELTA_MIN_GAP_SECONDS, TwinFeed

MIN_GAP = 0.5  # TWIN_PUSH_MAX_PER_SECOND = 2
BUILD = 0.05
DELTA_GAP = max(DELTA_MIN_GAP_SECONDS, DELTA_GAP_BUILDS * BUILD)
REFRESH = 5.0


class VirtualClock:
    """Time that jumps to the next scheduled change, or to the end of a wait."""

    def __init__(self) -> None:
        self.t = 0.0
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()

    def at(self, moment: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (moment, next(self._order), action))

    def now(self) -> float:
        return self.t

    def _run_until(self, moment: float, event: asyncio.Event | None = None) -> None:
        while self._timers and self._timers[0][0] <= moment and not (event and event.is_set()):
            self.t, _, action = heapq.heappop(self._timers)
            action()
        if not (event and event.is_set()):
            self.t = max(self.t, moment)

    async def sleep(self, seconds: float) -> None:
        self._run_until(self.t + seconds)
        await asyncio.sleep(0)

    async def wait(self, event: asyncio.Event, timeout: float) -> bool:
        self._run_until(self.t + timeout, event)
        await asyncio.sleep(0)
        return event.is_set()


class Twin:
    """The fleet the feed builds from: a counter per host, changed by the test."""

    def __init__(self, clock: VirtualClock, build_seconds: float = BUILD) -> None:
        self.clock = clock
        self.build_seconds = build_seconds
        self.values: dict[str, int] = {"titan-01": 0}
        self.builds = 0

    def change(self, hostname: str = "titan-01") -> None:
        self.values[hostname] = self.values.get(hostname, 0) + 1

    async def build(self) -> dict[str, Any]:
        self.builds += 1
        # Read before the build's own time passes: a change during it lands in the next build.
        snapshot = dict(self.values)
        await self.clock.sleep(self.build_seconds)
        hosts = [{"hostname": name, "metrics": {"cpuLoad": value}} for name, value in sorted(snapshot.items())]
        return {"type": "twin-state", "twinId": "t", "generatedAt": f"{self.clock.t:.3f}", "hosts": hosts, "links": []}


class Screen:
    """What listeners saw: every full state and every delta, with its time."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.listening = True
        self.states: list[tuple[float, dict[str, Any]]] = []
        self.deltas: list[tuple[float, dict[str, Any]]] = []
        self.field_deltas: list[tuple[float, dict[str, Any]]] = []

    def has_listeners(self) -> bool:
        return self.listening

    async def push(
        self,
        *,
        state: dict[str, Any] | None,
        delta: dict[str, Any] | None,
        field_delta: dict[str, Any] | None = None,
    ) -> None:
        if state is not None:
            self.states.append((self.clock.t, state))
        if delta is not None:
            self.deltas.append((self.clock.t, delta))
        if field_delta is not None:
            self.field_deltas.append((self.clock.t, field_delta))


class World:
    """A feed, the twin it builds from, the screen it pushes to, on a virtual clock."""

    def __init__(self, **options: Any) -> None:
        self.clock = VirtualClock()
        self.twin = Twin(self.clock)
        self.screen = Screen(self.clock)
        self.feed = TwinFeed(
            build=self.twin.build,
            output=self.screen,
            min_gap=MIN_GAP,
            refresh_seconds=REFRESH,
            clock=self.clock,
            **options,
        )

    def changes_at(self, *moments: float, hostname: str = "titan-01") -> None:
        for moment in moments:
            self.clock.at(moment, lambda: (self.twin.change(hostname), self.feed.changed()))

    async def join(self) -> dict[str, Any]:
        """A delta listener connects: it gets the state deltas will build on."""
        async with self.feed.push_lock:
            return await self.feed.versioned()

    async def run_until(self, moment: float) -> None:
        while self.clock.t < moment:
            await self.feed.cycle()

    def play(self, until: float) -> None:
        """A listener joins at time 0, then the feed runs until ``until``."""

        async def scenario() -> None:
            await self.join()
            await self.run_until(until)

        asyncio.run(scenario())

    def pushed_values(self) -> list[int]:
        """The values full-state listeners saw."""
        return [state["hosts"][0]["metrics"]["cpuLoad"] for _, state in self.screen.states]

    def delta_values(self) -> list[int]:
        """The values delta listeners saw."""
        return [delta["hosts"][0]["metrics"]["cpuLoad"] for _, delta in self.screen.deltas]


@pytest.fixture
def world() -> World:
    return World()


def test_a_flood_of_changes_is_coalesced_to_each_streams_rate_limit(world):
    world.changes_at(*(i * 0.01 for i in range(300)))  # 100 changes a second for 3 s
    world.play(until=4.0)
    state_times = [t for t, _ in world.screen.states]
    delta_times = [t for t, _ in world.screen.deltas]
    assert len(state_times) >= 5
    assert all(later - earlier >= MIN_GAP for earlier, later in itertools.pairwise(state_times))
    assert len(delta_times) > len(state_times)
    assert all(later - earlier >= DELTA_GAP for earlier, later in itertools.pairwise(delta_times))


def test_the_last_change_of_a_flood_is_always_pushed_on_both_streams(world):
    world.changes_at(*(i * 0.01 for i in range(300)))
    world.play(until=4.0)
    assert world.pushed_values()[-1] == 300
    assert world.delta_values()[-1] == 300


def test_a_change_just_after_a_push_reaches_delta_listeners_before_the_next_full_state_slot(world):
    world.changes_at(1.0, 1.05)
    world.play(until=3.0)
    (_, _), (second_delta, _) = world.screen.deltas
    (first_state, _), (second_state, _) = world.screen.states
    assert second_delta - 1.05 <= DELTA_GAP + BUILD + 1e-9
    assert second_delta < first_state + MIN_GAP <= second_state
    assert world.pushed_values() == world.delta_values() == [1, 2]


def test_deltas_of_a_slow_build_keep_apart_by_a_few_steps_but_never_more_than_the_full_gap():
    world = World()
    world.twin.build_seconds = 0.12
    world.changes_at(*(i * 0.01 for i in range(300)))
    world.play(until=4.0)
    gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(world.screen.deltas)]
    assert min(gaps) >= DELTA_GAP_BUILDS * 0.12
    assert max(gaps[:-1]) <= MIN_GAP + 0.12 + 1e-9


def test_a_delta_larger_than_the_limit_is_sent_as_a_resync_signal_to_the_state_of_its_version():
    world = World(delta_max_items=2)

    def change_three() -> None:
        for name in ("titan-01", "titan-02", "titan-03"):
            world.twin.change(name)
        world.feed.changed()

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        start = await world.join()
        world.clock.at(1.0, change_three)
        await world.run_until(2.0)
        return start, await world.join()

    start, resynced = asyncio.run(scenario())
    ((_, signal),) = world.screen.deltas
    assert signal["resync"] is True and signal["baseVersion"] is None
    assert signal["hosts"] == signal["links"] == signal["removedHosts"] == signal["removedLinks"] == []
    assert signal["version"] == start["version"] + 1 == resynced["version"]
    assert [h["metrics"]["cpuLoad"] for h in resynced["hosts"]] == [1, 1, 1]
    assert world.pushed_values() == [1]  # full listeners get the state as always


def test_a_change_too_large_for_a_whole_delta_reaches_fields_listeners_as_one_delta_of_the_same_version():
    world = World(delta_max_items=2)

    def change_three() -> None:
        for name in ("titan-01", "titan-02", "titan-03"):
            world.twin.change(name)
        world.feed.changed()

    async def scenario() -> dict[str, Any]:
        start = await world.join()
        world.clock.at(1.0, change_three)
        await world.run_until(2.0)
        return start

    start = asyncio.run(scenario())
    ((_, signal),) = world.screen.deltas
    ((_, fields),) = world.screen.field_deltas
    assert signal["resync"] is True
    assert fields["fields"] is True and "resync" not in fields
    assert (fields["baseVersion"], fields["version"]) == (start["version"], signal["version"])
    assert delta_apply(start, fields)["hosts"] == world.feed.published["hosts"]


def test_a_fields_delta_larger_than_its_share_of_the_state_is_sent_as_a_resync_signal(monkeypatch):
    monkeypatch.setattr(feed_module, "FIELD_DELTA_FREE_BYTES", 0)
    monkeypatch.setattr(feed_module, "FIELD_DELTA_STATE_SHARE", 0.01)
    world = World()
    world.changes_at(1.0)
    world.play(until=2.0)
    ((_, fields),) = world.screen.field_deltas
    ((_, whole),) = world.screen.deltas
    assert fields["resync"] is True and fields["baseVersion"] is None
    assert fields["version"] == whole["version"] and "resync" not in whole


def test_a_change_during_a_rebuild_is_pushed_by_the_next_one(world):
    world.twin.build_seconds = 0.2
    world.changes_at(1.0, 1.1)  # the second lands while the first is being built
    world.play(until=3.0)
    assert world.pushed_values() == [1, 2]


def test_without_changes_the_twin_is_rebuilt_each_refresh_and_pushed_only_if_it_differs(world):
    # A status that changes with the clock alone looks, to the feed, like a build that differs.
    world.clock.at(7.0, world.twin.change)
    world.play(until=16.0)
    assert world.twin.builds >= 3
    assert [round(t) for t, _ in world.screen.states] == [round(t) for t, _ in world.screen.deltas] == [10]


def test_deltas_carry_consecutive_versions_from_the_state_a_listener_started_with(world):
    async def scenario() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        start = await world.join()
        world.changes_at(1.0, 2.0, 3.0)
        world.changes_at(2.5, hostname="titan-02")
        await world.run_until(4.0)
        return start, [delta for _, delta in world.screen.deltas]

    start, deltas = asyncio.run(scenario())
    assert [d["baseVersion"] for d in deltas] == [start["version"], *(d["version"] for d in deltas[:-1])]
    held = start
    for delta in deltas:
        held = delta_apply(held, delta)
    assert held["hosts"] == world.screen.states[-1][1]["hosts"]


def test_after_a_quiet_spell_new_listeners_start_from_the_twin_of_their_time(world):
    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        before = await world.join()
        world.screen.listening = False
        world.changes_at(1.0, 2.0)
        await world.run_until(12.0)  # refreshes find nobody listening
        world.screen.listening = True
        return before, await world.join()

    before, after = asyncio.run(scenario())
    assert world.screen.states == world.screen.deltas == []
    assert after["version"] > before["version"]
    assert after["hosts"][0]["metrics"]["cpuLoad"] == 2


def test_nothing_is_built_while_nobody_listens(world):
    world.screen.listening = False
    world.changes_at(*(i * 0.1 for i in range(50)))
    asyncio.run(world.run_until(20.0))
    assert world.twin.builds == 0


def test_a_resync_gets_the_last_pushed_state_with_its_version(world):
    async def scenario() -> dict[str, Any]:
        await world.join()
        world.changes_at(1.0)
        await world.run_until(2.0)
        return await world.join()

    resynced = asyncio.run(scenario())
    _, pushed = world.screen.states[-1]
    _, delta = world.screen.deltas[-1]
    assert resynced["version"] == delta["version"]
    assert resynced["hosts"] == pushed["hosts"]


def test_one_slow_step_does_not_hold_the_next_delta_back_by_three_times_its_length():
    world = World()
    world.twin.build_seconds = 0.02
    slow_at = 2.0
    world.clock.at(slow_at - 0.01, lambda: setattr(world.twin, "build_seconds", 0.3))
    world.clock.at(slow_at + 0.35, lambda: setattr(world.twin, "build_seconds", 0.02))
    world.changes_at(*(i * 0.25 for i in range(16)))
    world.changes_at(slow_at + 0.32, hostname="probe")
    world.play(until=5.0)
    arrival = next(t for t, d in world.screen.deltas if any(h["hostname"] == "probe" for h in d["hosts"]))
    assert arrival - (slow_at + 0.32) < 0.3  # the full gap (0.5 s) without averaging
