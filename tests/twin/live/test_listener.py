"""The listener keeps its channel in the events group: a Redis that forgets the group is joined again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis as redis_client
from channels_redis.core import RedisChannelLayer
from prometheus_client import REGISTRY

from common.events import EVENTS_GROUP
from tests.ops.test_redis_faults import PrivateRedis
from twin.live import listener

LOGGER = "twin.live.listener"


@pytest.fixture
def redis(tmp_path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _no_listener_state_left():
    """/readyz reads the process's listener state: a test's listener must not leave one behind."""
    yield
    listener.LISTENER.in_group, listener.LISTENER.detail = None, ""


def rejoins() -> float:
    return REGISTRY.get_sample_value("twin_channel_layer_rejoins_total") or 0.0


# A test that cannot finish fails within this bound instead of hanging the suite.
SCENARIO_SECONDS = 30


def run_bounded(scenario: Any) -> None:
    asyncio.run(asyncio.wait_for(scenario(), SCENARIO_SECONDS))


async def until(predicate: Any, seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while not await predicate():
        assert time.monotonic() < deadline, "not within the bound"
        await asyncio.sleep(0.02)


def test_a_group_the_layer_forgot_is_joined_again_logged_and_counted(redis: PrivateRedis, caplog):
    layer = RedisChannelLayer(hosts=[{"address": redis.url, "socket_timeout": 5}], prefix="twin-listener-test")
    plain = redis_client.Redis(host="127.0.0.1", port=redis.port, socket_timeout=5)
    key = layer._group_key(EVENTS_GROUP)
    before = rejoins()

    async def scenario() -> None:
        channel = await layer.new_channel()
        keeper = asyncio.create_task(listener.membership_keep(layer, channel, every=0.05))
        try:

            async def member() -> bool:
                return plain.zscore(key, channel) is not None

            await until(member)
            plain.flushall()  # what a restarted Redis knows of the group: nothing
            await until(member)
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            await layer.flush()

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        run_bounded(scenario)
    plain.close()
    assert rejoins() - before == 1
    assert any("lost this process's events-group membership" in r.getMessage() for r in caplog.records)
    assert listener.LISTENER.in_group is True


def test_a_renewal_that_fails_is_logged_once_and_readyz_learns_it(redis: PrivateRedis, caplog):
    layer = RedisChannelLayer(hosts=[{"address": redis.url, "socket_timeout": 5}], prefix="twin-listener-test")

    async def scenario() -> None:
        channel = await layer.new_channel()
        redis.stop()
        keeper = asyncio.create_task(listener.membership_keep(layer, channel, every=0.05))
        try:

            async def out_of_group() -> bool:
                return listener.LISTENER.in_group is False

            await until(out_of_group)
            await asyncio.sleep(0.3)  # a few more failed renewals, which must not be logged again
            redis.start()

            async def in_group() -> bool:
                return listener.LISTENER.in_group is True

            await until(in_group)
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper

    with caplog.at_level(logging.INFO, logger=LOGGER):
        run_bounded(scenario)
    messages = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert sum("cannot join" in m for m in messages) == 1
    assert any("in its channel-layer group again" in m for m in messages)
