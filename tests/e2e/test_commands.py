"""End to end: a real server, agents on the long poll, operators with tokens, staff dashboards on Socket.IO."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import socketio
from django.db import connection
from rest_framework.authtoken.models import Token

from commands.models import Command, InvocationTransition
from hosts.credentials import signature_compute
from hosts.services import enrollment_key_create
from tests.commands.conftest import grant
from tests.e2e.conftest import LiveServer, server_start, server_stop

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
NAMESPACE = "/digital-twin"


def _private(tmp_path: Path, prefix: str, **env: str) -> LiveServer:
    return server_start(
        tmp_path, CHANNEL_LAYER_PREFIX=prefix, TWIN_AGENT_AUTH="signed", TWIN_PUBLIC_READ="false", **env
    )


@pytest.fixture
def twin(transactional_db, django_db_serialized_rollback, tmp_path, channel_prefix) -> Iterator[LiveServer]:
    server = _private(tmp_path, channel_prefix)
    yield server
    server_stop(server)


@pytest.fixture
def people(django_user_model) -> dict[str, str]:
    """API tokens: an operator (staff, may send commands) and a plain reader."""
    operator = django_user_model.objects.create_user("alice", password="a-long-password-1", is_staff=True)
    grant(operator, "add_command", "view_command")
    reader = django_user_model.objects.create_user("rita", password="a-long-password-1")
    return {"operator": Token.objects.create(user=operator).key, "reader": Token.objects.create(user=reader).key}


class Agent:
    """A host's agent over real HTTP: registers, waits on the long poll, reports; every request signed."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http, self.url = http, url
        self.hostname = self.key_id = self.secret = ""

    async def register(self, hostname: str, enrollment: str) -> Agent:
        async with self.http.post(
            f"{self.url}/api/hosts/register",
            json={"hostname": hostname, "platform": "Linux-x86_64", "agent_version": "1.0.0"},
            headers={"Authorization": f"Bearer {enrollment}"},
        ) as response:
            assert response.status == 201, await response.text()
            credential = await response.json()
        self.hostname, self.key_id, self.secret = hostname, credential["keyId"], credential["signingSecret"]
        return self

    def _headers(self, signed: bytes) -> dict[str, str]:
        stamp = str(int(time.time()))
        return {
            "X-Twin-Key-Id": self.key_id,
            "X-Twin-Timestamp": stamp,
            "X-Twin-Signature": signature_compute(secret=self.secret, timestamp=stamp, body=signed),
        }

    async def poll(self, wait: float = 25) -> list[dict[str, Any]]:
        path = f"/api/commands/pending?wait={wait:g}"
        async with self.http.get(f"{self.url}{path}", headers=self._headers(f"GET {path}".encode())) as response:
            assert response.status == 200, await response.text()
            return (await response.json())["invocations"]

    async def batch(self, samples: list[dict[str, Any]], *, sequence: int) -> int:
        """Post a signed batch of ``samples`` as batch ``sequence`` of one session; the answer's status."""
        body = orjson.dumps({"agent_session": "e2e", "sequence": sequence, "samples": samples})
        headers = {"Content-Type": "application/json", **self._headers(body)}
        async with self.http.post(f"{self.url}/api/metrics/batch", data=body, headers=headers) as response:
            return response.status

    async def report(self, command_id: int, document: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        body = orjson.dumps(document)
        headers = {"Content-Type": "application/json", **self._headers(body)}
        async with self.http.post(f"{self.url}/api/commands/{command_id}/result", data=body, headers=headers) as r:
            return r.status, await r.json()


async def send(http: aiohttp.ClientSession, url: str, token: str, **document: Any) -> dict[str, Any]:
    async with http.post(f"{url}/api/commands", json=document, headers={"Authorization": f"Token {token}"}) as r:
        assert r.status == 201, await r.text()
        return await r.json()


class Watcher:
    """A Socket.IO client on /digital-twin that records every ``command-update`` it gets."""

    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.updates: list[dict[str, Any]] = []
        self.client.on("command-update", self.updates.append, namespace=NAMESPACE)

    async def connect(self, url: str, token: str) -> Watcher:
        await self.client.connect(url, namespaces=[NAMESPACE], transports=["websocket"], auth={"token": token})
        return self

    async def until(self, count: int, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while len(self.updates) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        await self.client.eio.disconnect(abort=True)


async def _until(check: Callable[[], Any], timeout: float = 20) -> None:
    """Wait until ``check`` (a database read, run on a thread of its own) is true."""

    def read() -> Any:
        try:
            return check()
        finally:
            connection.close()  # this worker thread's own connection

    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(read):
        assert time.monotonic() < deadline, "not reached in time"
        await asyncio.sleep(0.2)


def test_an_agent_on_the_long_poll_gets_a_command_as_it_is_sent_and_staff_watch_it_live(twin, people):
    _, enrollment = enrollment_key_create(name="e2e")

    async def scenario() -> None:
        staff, reader = Watcher(), Watcher()
        await staff.connect(twin.url, people["operator"])
        await reader.connect(twin.url, people["reader"])
        try:
            async with aiohttp.ClientSession() as http:
                agent = await Agent(http, twin.url).register("titan-01", enrollment)
                waiting = asyncio.ensure_future(agent.poll(wait=25))
                await asyncio.sleep(0.5)  # the poll is waiting
                started = time.monotonic()
                command = await send(http, twin.url, people["operator"], action="ping", targets={"hosts": ["titan-01"]})
                [invocation] = await waiting
                # Woken by the command, not by the end of the wait.
                assert time.monotonic() - started < 20
                assert invocation["commandId"] == command["id"] and invocation["action"] == "ping"
                status, ack = await agent.report(command["id"], {"status": "running"})
                assert (status, ack["state"]) == (200, "running")
                outcome = {"status": "succeeded", "exit_code": 0, "output": "pong", "data": {"agentVersion": "1.0.0"}}
                status, done = await agent.report(command["id"], outcome)
                assert (status, done["state"]) == (200, "succeeded")
            await staff.until(4)
            assert [(u["state"], u["commandState"]) for u in staff.updates] == [
                ("queued", "pending"),
                ("dispatched", "in_progress"),
                ("running", "in_progress"),
                ("succeeded", "completed"),
            ]
            last = staff.updates[-1]
            assert (last["type"], last["id"], last["host"], last["action"]) == (
                "command-update",
                command["id"],
                "titan-01",
                "ping",
            )
            assert last["result"] == {
                "exitCode": 0,
                "output": "pong",
                "outputTruncated": False,
                "data": {"agentVersion": "1.0.0"},
            }
            assert all("result" not in u for u in staff.updates[:3])
            assert last["finishedAt"] and last["dispatchedAt"] and last["startedAt"]
            await asyncio.sleep(0.5)
            assert reader.updates == []  # readers who are not staff never see commands
        finally:
            await staff.close()
            await reader.close()

    asyncio.run(scenario())


def test_timeouts_and_undeliverables_pass_with_no_request_arriving(twin, people):
    _, enrollment = enrollment_key_create(name="e2e")

    async def scenario() -> int:
        async with aiohttp.ClientSession() as http:
            agent = await Agent(http, twin.url).register("mute-01", enrollment)
            await Agent(http, twin.url).register("offline-01", enrollment)
            targets = {"hosts": ["mute-01", "offline-01"]}
            command = await send(
                http, twin.url, people["operator"], action="ping", targets=targets, timeout_seconds=1,
                delivery_timeout_seconds=2,
            )  # fmt: skip
            assert len(await agent.poll(wait=0)) == 1  # handed out, then never answered
        return command["id"]

    command_id = asyncio.run(scenario())

    def ended() -> bool:
        return set(Command.objects.get(pk=command_id).invocations.values_list("state", flat=True)) == {
            "timed_out",
            "undeliverable",
        }

    asyncio.run(_until(ended))
    ends = InvocationTransition.objects.filter(
        invocation__command_id=command_id, to_state__in=["timed_out", "undeliverable"]
    )
    assert sorted(ends.values_list("invocation__hostname", "cause")) == [
        ("mute-01", "timeout"),
        ("offline-01", "delivery_timeout"),
    ]


def test_waiting_agents_hold_no_thread_each(twin, people):
    _, enrollment = enrollment_key_create(name="e2e")

    def threads() -> int:
        status = Path(f"/proc/{twin.process.pid}/status").read_text()
        return int(next(line for line in status.splitlines() if line.startswith("Threads:")).split()[1])

    async def scenario() -> tuple[int, int, int]:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            agents = [await Agent(http, twin.url).register(f"wait-{i:02}", enrollment) for i in range(40)]
            await asyncio.gather(*(a.poll(wait=0) for a in agents))  # worker threads warmed up
            before = threads()
            polls = [asyncio.ensure_future(a.poll(wait=25)) for a in agents]
            await asyncio.sleep(3)
            during = threads()
            targets = {"hosts": [a.hostname for a in agents]}
            await send(http, twin.url, people["operator"], action="ping", targets=targets)
            answers = await asyncio.gather(*polls)
            return before, during, sum(len(a) for a in answers)

    before, during, handed = asyncio.run(scenario())
    assert handed == 40
    # Django's own handler would keep a thread per waiting request: 40 more.
    assert during - before < 10, (before, during)


def test_two_server_processes_time_each_invocation_out_exactly_once(
    transactional_db, django_db_serialized_rollback, tmp_path, channel_prefix, people
):
    # Without Redis each process hears only its own events: the database alone is checked then.
    shared_layer = bool(os.environ.get("REDIS_URL"))
    first = _private(tmp_path, channel_prefix)
    second = _private(tmp_path, channel_prefix)
    _, enrollment = enrollment_key_create(name="e2e")
    count = 12

    def timed_out() -> list[int]:
        ends = InvocationTransition.objects.filter(invocation__command__issued_by_name="alice", to_state="timed_out")
        return sorted(ends.values_list("invocation__command_id", flat=True))

    async def scenario() -> tuple[list[int], list[Watcher]]:
        servers = (first, second) if shared_layer else ()
        watchers = [await Watcher().connect(server.url, people["operator"]) for server in servers]
        try:
            async with aiohttp.ClientSession() as http:
                agents = [await Agent(http, first.url).register(f"slow-{i:02}", enrollment) for i in range(count)]
                ids = []
                for i, agent in enumerate(agents):
                    server = (first, second)[i % 2]
                    command = await send(
                        http, server.url, people["operator"], action="ping", targets={"hosts": [agent.hostname]},
                        timeout_seconds=1,
                    )  # fmt: skip
                    ids.append(command["id"])
                    assert await agent.poll(wait=0)
            await _until(lambda: len(timed_out()) >= count)
            await asyncio.sleep(3)  # both processes' runners tick a few more times
            for watcher in watchers:
                await watcher.until(count * 3)
            return ids, watchers
        finally:
            for watcher in watchers:
                await watcher.close()

    try:
        ids, watchers = asyncio.run(scenario())
        assert timed_out() == ids  # once each
        assert len(watchers) == (2 if shared_layer else 0)
        for watcher in watchers:
            # Each dashboard, whichever process it is on, hears each timeout once.
            assert sorted(u["id"] for u in watcher.updates if u["state"] == "timed_out") == ids
    finally:
        server_stop(first)
        server_stop(second)
