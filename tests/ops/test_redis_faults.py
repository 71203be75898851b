"""Redis goes away and comes back, under two server processes (issue 24, item 6).

Each test runs a Redis of its own on a free loopback port and stops, kills and
restarts that one (never the run's shared Redis): ingest goes on without it,
``/readyz`` names what is missing meanwhile, and once it is back each process's
listener rejoins its group by itself, so changes made on one process reach the
dashboards of the other again.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis as redis_client

from tests.conftest import sample_dict
from tests.e2e.conftest import LiveServer, free_port, server_start, server_stop
from tests.e2e.test_socketio import Dashboard, host_of, post
from tests.ops.test_nginx_topology import Proxy, answered_by, app_lines, nginx_start, port_wait, post_from, process_stop
from tests.ops.test_prometheus import samples_of, value

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

# Long enough that no periodic refresh can carry a change in these tests: only the listener can.
REFRESH_SECONDS = "300"
# Every change a new value (a percentage, as the schema wants).
CPU_LOADS = (n / 4 for n in itertools.count(1) if n % 400)


class PrivateRedis:
    """A redis-server of this test's own on one loopback port, which it may stop, kill and start again."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("these tests stop a Redis of their own: install redis-server")
        self.binary = binary
        self.port = free_port()
        self.log = directory / "redis.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        # No persistence: a restarted Redis knows nothing, as one restarted from a crash without a dump.
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(command, stdout=self.log.open("a"), stderr=subprocess.STDOUT)
        port_wait(self.port, self.process, self.log)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def pause(self) -> None:
        """SIGSTOP: connections are still accepted by the kernel, and nothing answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None:
            self.resume()
            process_stop(self.process)
            self.process = None


@pytest.fixture
def redis(tmp_path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def pair(tmp_path, channel_prefix, redis: PrivateRedis) -> Iterator[list[LiveServer]]:
    """Two server processes sharing the private Redis, with no periodic refresh to speak of."""
    shared = {
        "REDIS_URL": redis.url,
        "CHANNEL_LAYER_PREFIX": channel_prefix,
        "LOG_FORMAT": "json",
        "TWIN_REFRESH_SECONDS": REFRESH_SECONDS,
    }
    started = [server_start(tmp_path, **shared), server_start(tmp_path, **shared)]
    yield started
    for server in started:
        server_stop(server)


def get_json(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, orjson.loads(error.read())


def scraped(server: LiveServer, name: str, **labels: str) -> float:
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as response:
        return value(samples_of(response.read().decode()), name, **labels)


def readyz_wait(server: LiveServer, wanted: int, seconds: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        status, body = get_json(f"{server.url}/readyz")
        if status == wanted:
            return body
        assert time.monotonic() < deadline, f"/readyz still answers {status} after {seconds} s: {body}"
        time.sleep(0.2)


async def change_until_seen(origin: LiveServer, dashboard: Dashboard, hostname: str, seconds: float) -> float:
    """Post a new value on ``origin`` every half second until ``dashboard`` shows one; the value seen.

    Events are delivered at most once: one sent before the listener rejoined is
    lost by design (the refresh heals it), so the change is made again until
    one goes through, within ``seconds``.
    """
    deadline = time.monotonic() + seconds
    while True:
        value_sent = next(CPU_LOADS)
        await post(origin.url, [sample_dict(hostname, cpu_load=value_sent)])
        try:
            state = await dashboard.wait_for(
                lambda s, sent=value_sent: (h := host_of(s, hostname)) is not None and h["metrics"]["cpuLoad"] == sent,
                timeout=0.5,
            )
            return host_of(state, hostname)["metrics"]["cpuLoad"]
        except AssertionError:
            if time.monotonic() >= deadline:
                raise AssertionError(f"no change made on {origin.url} reached the dashboard in {seconds} s") from None


def redis_kill_and_restart(redis: PrivateRedis) -> None:
    """The fault as seen from outside: SIGKILL, and a new Redis on the same port at once."""
    redis.kill()
    redis.start()


def redis_forget_everything(redis: PrivateRedis) -> None:
    """The same loss without a broken connection: what a listener that was busy delivering when Redis
    restarted sees (its next receive takes a fresh connection to the new Redis, and no error)."""
    client = redis_client.Redis(host="127.0.0.1", port=redis.port)
    try:
        client.flushall()
    finally:
        client.close()


@pytest.mark.parametrize("fault", [redis_kill_and_restart, redis_forget_everything], ids=["killed", "emptied"])
def test_after_redis_loses_its_groups_changes_reach_the_other_process_again(pair, redis: PrivateRedis, fault):
    origin, watched = pair

    async def scenario() -> None:
        dashboard = await Dashboard().connect(watched.url, "websocket")
        try:
            await dashboard.wait_for(lambda s: True, timeout=10)
            # Before: a change on one process reaches the other's dashboard through Redis.
            await change_until_seen(origin, dashboard, "redis-kill-01", seconds=10)
            # Redis knows no group any more; the listener finds out and joins again.
            fault(redis)
            # Twice: the first change may still ride on a rebuild that an event from before
            # the fault asked for (it reads the database after the change commits); the
            # second can only come through the listener.
            await change_until_seen(origin, dashboard, "redis-kill-01", seconds=15)
            await change_until_seen(origin, dashboard, "redis-kill-01", seconds=15)
            assert dashboard.client.connected
        finally:
            await dashboard.close()

    asyncio.run(scenario())
    assert scraped(watched, "twin_channel_layer_rejoins_total") >= 1
    assert "lost this process's events-group membership" in watched.output()


# Redis gone (refused at once), or hanging (each call waits out its socket timeout), and back.
OUTAGES = {"stopped": (PrivateRedis.stop, PrivateRedis.start), "paused": (PrivateRedis.pause, PrivateRedis.resume)}


@pytest.mark.parametrize("outage", OUTAGES)
def test_while_redis_is_away_ingest_goes_on_through_nginx_and_readyz_names_what_is_missing(
    tmp_path, pair, redis: PrivateRedis, outage
):
    leave, come_back = OUTAGES[outage]
    proxy: Proxy = nginx_start(tmp_path / "nginx", pair)
    try:
        leave(redis)
        for server in pair:
            body = readyz_wait(server, 503)
            assert body["checks"]["cache"]["ok"] is False
            assert body["checks"]["channel_layer"]["ok"] is False
            assert body["checks"]["database"]["ok"] is True

        async def batches() -> dict[str, list[int]]:
            # From successive loopback addresses until both processes have taken batches.
            statuses: dict[str, list[int]] = {}
            for n in range(2, 40):
                request_id = f"rid-redis-gone-{n}"
                body = orjson.dumps({"samples": [sample_dict(f"redis-gone-{n:02d}")]})
                status, headers, text = await post_from(f"127.0.0.{n}", proxy.url, body, request_id)
                assert status == 202, (status, headers, text)
                statuses.setdefault(answered_by(proxy, pair, request_id).url, []).append(status)
                if len(statuses) == 2 and n >= 9:
                    break
            return statuses

        statuses = asyncio.run(batches())
        assert len(statuses) == 2, f"every batch went to one process: {statuses}"
        for server in pair:
            assert scraped(server, "twin_rate_limit_local_decisions_total", scope="ingest") >= 1
            # Logged once for the outage, not once per batch.
            logged = [line for line in app_lines(server) if line["logger"] == "common.throttling"]
            assert [line["level"] for line in logged] == ["WARNING"]
            assert "rate limits are counted per process" in logged[0]["message"]

        # Back: both processes are ready again by themselves.
        come_back(redis)
        for server in pair:
            readyz_wait(server, 200)
    finally:
        redis.resume()
        process_stop(proxy.process)
