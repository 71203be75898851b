"""End to end: every event on /digital-twin reaches exactly the readers who may read the same over REST.

Real Socket.IO clients against a real server with private reads. Each event of
``twin.audiences.EVENT_PERMISSIONS`` is made to happen, and each reader's
share of it is compared with what the REST endpoint it mirrors answers that
reader's token. A permission granted or revoked, to the user or to one of their
groups, starts or stops the restricted events on the open connection
(``twin.live.guard``), within a bounded wait.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import pytest
import socketio
from django.contrib.auth.models import Group, Permission
from django.db import connection
from rest_framework.authtoken.models import Token

from hosts.services import enrollment_key_create
from tests.commands.conftest import grant
from tests.conftest import sample_dict
from tests.e2e.conftest import LiveServer, server_start, server_stop
from tests.e2e.test_commands import Agent, send
from twin.audiences import EVENT_PERMISSIONS
from twin.live.dispatch import SOCKET_EVENTS

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
NAMESPACE = "/digital-twin"
RECHECK_SECONDS = 0.5
# Long enough for the guard's recheck and a loaded CI machine; not a speed figure.
PERMISSION_WAIT_SECONDS = 15

# The REST read each event mirrors (docs/api.md): a reader gets the event iff this answers them 200.
MIRRORED_READ: dict[str, str] = {
    "twin-state": "/api/twin/state",
    "twin-delta": "/api/twin/state",
    "host-status": "/api/hosts/aud-01/events",
    "command-update": "/api/commands",
    "alert-update": "/api/alerts",
}


@pytest.fixture
def twin(transactional_db, django_db_serialized_rollback, tmp_path, channel_prefix) -> Iterator[LiveServer]:
    server = server_start(
        tmp_path,
        CHANNEL_LAYER_PREFIX=channel_prefix,
        TWIN_AGENT_AUTH="signed",
        TWIN_PUBLIC_READ="false",
        TWIN_READER_RECHECK_SECONDS=str(RECHECK_SECONDS),
    )
    yield server
    server_stop(server)


@pytest.fixture
def readers(django_user_model) -> dict[str, Any]:
    """Users with API tokens, each holding a different share of the command permissions."""

    def user(name: str, *codenames: str, staff: bool = True) -> Any:
        made = django_user_model.objects.create_user(name, password="a-long-password-1", is_staff=staff)
        grant(made, *codenames)
        Token.objects.create(user=made)
        return made

    return {
        "operator": user("olga", "add_command", "view_command"),
        "sender": user("sam", "add_command"),
        "viewer": user("vera", "view_command"),
        "staff": user("stan"),  # staff, but no command permission
        "plain": user("pia", staff=False),
    }


def token_of(user: Any) -> str:
    return Token.objects.get(user=user).key


class Listener:
    """A Socket.IO client recording every event it receives on the namespace, by name."""

    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, Any]] = []
        self.connects = 0
        self.client.on("*", self._record, namespace=NAMESPACE)
        self.client.on("connect", self._connected, namespace=NAMESPACE)

    def _record(self, event: str, data: Any = None) -> None:
        self.events.append((event, data))

    def _connected(self) -> None:
        self.connects += 1

    async def connect(self, url: str, token: str, *, mode: str = "full") -> Listener:
        await self.client.connect(url, namespaces=[NAMESPACE], transports=["websocket"], auth={"token": token})
        if mode == "delta":
            assert await self.client.call("subscribe", {"mode": "delta"}, namespace=NAMESPACE, timeout=5) == {
                "mode": "delta"
            }
        return self

    def kinds(self) -> set[str]:
        return {name for name, _ in self.events}

    def command_ids(self) -> set[int]:
        return {data["id"] for name, data in self.events if name == "command-update"}

    async def close(self) -> None:
        await self.client.eio.disconnect(abort=True)


async def until(check: Callable[[], Any], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        await asyncio.sleep(0.05)


async def rest_answers(http: aiohttp.ClientSession, url: str, token: str, path: str) -> int:
    async with http.get(f"{url}{path}", headers={"Authorization": f"Token {token}"}) as response:
        return response.status


def in_db(change: Callable[[], Any]) -> Callable[[], Awaitable[Any]]:
    """A database change made on a thread of its own (the test's loop keeps its clients served)."""

    def run() -> Any:
        try:
            return change()
        finally:
            connection.close()

    return lambda: asyncio.to_thread(run)


def test_every_event_reaches_exactly_the_readers_its_rest_read_answers(twin: LiveServer, readers):
    # The class, not the example: an event added to the namespace without its REST read here fails.
    assert set(MIRRORED_READ) == set(EVENT_PERMISSIONS) == {"twin-state", "twin-delta", *SOCKET_EVENTS.values()}
    _, enrollment = enrollment_key_create(name="audiences")
    tokens = {name: token_of(user) for name, user in readers.items()}

    async def scenario() -> tuple[dict[str, set[str]], dict[str, dict[str, int]], dict[str, Any]]:
        # Each reader twice: a full-state client and a delta subscriber.
        full = {name: await Listener().connect(twin.url, token) for name, token in tokens.items()}
        delta = {name: await Listener().connect(twin.url, token, mode="delta") for name, token in tokens.items()}
        everyone = [*full.values(), *delta.values()]
        try:
            for listener in everyone:
                await until(lambda x=listener: "twin-state" in x.kinds(), timeout=10, what="a starting state")
            async with aiohttp.ClientSession() as http:
                # A new host's first batch: a changed twin (state and delta), its first status, and at
                # 95 % CPU the shipped HighCpu rule's pending alert (an alert-update).
                agent = await Agent(http, twin.url).register("aud-01", enrollment)
                assert await agent.batch([sample_dict("aud-01", cpu_load=95.0)], sequence=1) == 202
                # A command to it, run and answered with output: its updates.
                command = await send(http, twin.url, tokens["operator"], action="ping", targets={"hosts": ["aud-01"]})
                assert [i["commandId"] for i in await agent.poll(wait=5)] == [command["id"]]
                outcome = {"status": "succeeded", "exit_code": 0, "output": "pong: secret output"}
                assert (await agent.report(command["id"], outcome))[0] == 200
                # Every kind made: the operator's clients saw them all, the result last.
                await until(
                    lambda: (
                        {"twin-state", "host-status", "command-update", "alert-update"} <= full["operator"].kinds()
                        and "twin-delta" in delta["operator"].kinds()
                        and any(name == "command-update" and d.get("result") for name, d in full["operator"].events)
                    ),
                    timeout=15,
                    what="every kind of event at the operator's clients",
                )
                await asyncio.sleep(1)  # what else was sent has arrived
                answers = {
                    name: {
                        event: await rest_answers(http, twin.url, token, path) for event, path in MIRRORED_READ.items()
                    }
                    for name, token in tokens.items()
                }
            received = {name: full[name].kinds() | delta[name].kinds() for name in tokens}
            return received, answers, full["operator"].events
        finally:
            for listener in everyone:
                await listener.close()

    received, answers, operator_events = asyncio.run(scenario())
    for name in readers:
        for event in EVENT_PERMISSIONS:
            assert answers[name][event] in (200, 403), (name, event, answers[name][event])
            rest_allows = answers[name][event] == 200
            assert (event in received[name]) == rest_allows, (
                f"{name}: {event} received={event in received[name]}, {MIRRORED_READ[event]} answers "
                f"{answers[name][event]}"
            )
    # Not vacuous: REST refuses the commands to some readers, and grants them to some.
    assert {answers[name]["command-update"] for name in readers} == {200, 403}
    # The output went only where the commands may be read.
    [result] = [d["result"] for name, d in operator_events if name == "command-update" and d.get("result")]
    assert result["output"] == "pong: secret output"
    assert {name for name in readers if "command-update" in received[name]} == {"operator", "sender", "viewer"}


def test_a_permission_granted_or_revoked_starts_or_stops_command_updates_on_the_open_connection(
    twin: LiveServer, readers
):
    _, enrollment = enrollment_key_create(name="audiences")
    staff = readers["staff"]
    view = Permission.objects.get(content_type__app_label="commands", codename="view_command")
    group = Group.objects.create(name="command-watchers")
    operator_token, staff_token = token_of(readers["operator"]), token_of(staff)

    async def scenario() -> list[str]:
        reference = await Listener().connect(twin.url, operator_token)
        watched = await Listener().connect(twin.url, staff_token)
        sid = watched.client.get_sid(NAMESPACE)
        log: list[str] = []
        try:
            async with aiohttp.ClientSession() as http:
                await Agent(http, twin.url).register("aud-01", enrollment)

                async def command_seen() -> bool:
                    """Send a command; whether the watched reader got its update (the reference did)."""
                    command = await send(http, twin.url, operator_token, action="ping", targets={"hosts": ["aud-01"]})
                    await until(lambda: command["id"] in reference.command_ids(), timeout=10, what="the reference")
                    await asyncio.sleep(0.3)  # the same emit order: anything for the watched one is here too
                    return command["id"] in watched.command_ids()

                async def becomes(seen: bool, what: str) -> None:
                    """Within the bounded wait, commands are seen (or not) by the watched reader, and stay so."""
                    deadline = time.monotonic() + PERMISSION_WAIT_SECONDS
                    while await command_seen() != seen:
                        assert time.monotonic() < deadline, f"not within {PERMISSION_WAIT_SECONDS} s: {what}"
                    assert await command_seen() == seen, f"{what}, then not any more"
                    log.append(what)

                assert not await command_seen()
                log.append("no permission: none")
                await in_db(lambda: staff.user_permissions.add(view))()
                await becomes(True, "granted to the user: arrive")
                await in_db(lambda: staff.user_permissions.remove(view))()
                await becomes(False, "revoked from the user: stop")
                await in_db(lambda: group.permissions.add(view))()
                await in_db(lambda: staff.groups.add(group))()
                await becomes(True, "joined a group holding it: arrive")
                await in_db(lambda: group.permissions.remove(view))()
                await becomes(False, "revoked from the group: stop")
                await in_db(lambda: group.permissions.add(view))()
                await becomes(True, "granted to the group again: arrive")
                await in_db(lambda: staff.groups.remove(group))()
                await becomes(False, "left the group: stop")
            # All on the one connection: nothing reconnected, and the twin kept coming.
            assert watched.client.connected and watched.client.get_sid(NAMESPACE) == sid
            assert watched.connects == 1
            assert "twin-state" in watched.kinds()
            return log
        finally:
            await reference.close()
            await watched.close()

    assert asyncio.run(scenario()) == [
        "no permission: none",
        "granted to the user: arrive",
        "revoked from the user: stop",
        "joined a group holding it: arrive",
        "revoked from the group: stop",
        "granted to the group again: arrive",
        "left the group: stop",
    ]
