"""End to end: hostile Socket.IO connections get an answer, and revoking a reader reaches its open connection."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import socketio
from django.test import Client
from rest_framework.authtoken.models import Token

from tests.e2e.conftest import LiveServer, server_start, server_stop
from tests.e2e.test_socketio import Dashboard

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

NAMESPACE = "/digital-twin"
RECHECK_SECONDS = 1.0


def _module_server(tmp_path: Path, **env: str) -> Iterator[LiveServer]:
    # One server for the module: each test's own rows come and go with its
    # transaction-less database, which the server reads like any client.
    server = server_start(tmp_path, CHANNEL_LAYER_PREFIX=f"twin-test-{uuid.uuid4().hex[:8]}", **env)
    yield server
    server_stop(server)
    assert "Traceback" not in server.output(), server.output()


@pytest.fixture(scope="module")
def private_twin(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[LiveServer]:
    yield from _module_server(
        tmp_path_factory.mktemp("private"),
        TWIN_AGENT_AUTH="signed",
        TWIN_PUBLIC_READ="false",
        TWIN_READER_RECHECK_SECONDS=str(RECHECK_SECONDS),
    )


@pytest.fixture(scope="module")
def public_twin(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[LiveServer]:
    yield from _module_server(tmp_path_factory.mktemp("public"))


async def connect_refusal(url: str, *, transport: str = "websocket", **options: Any) -> dict[str, Any]:
    """Connect expecting a refusal; the connect_error's payload, which must come within a few seconds.

    Only the refusal is timed: a polling client's own teardown then waits out
    its pending long poll, which says nothing about the server.
    """
    client = socketio.AsyncClient(reconnection=False)
    refused = asyncio.Event()
    refusals: list[dict[str, Any]] = []

    def on_refusal(data: dict[str, Any]) -> None:
        refusals.append(data)
        refused.set()

    client.on("connect_error", on_refusal, namespace=NAMESPACE)
    attempt = asyncio.create_task(client.connect(url, namespaces=[NAMESPACE], transports=[transport], **options))
    try:
        await asyncio.wait_for(refused.wait(), 5)
    except TimeoutError:
        raise AssertionError("no connect_error within 5 s: the client was left waiting") from None
    finally:
        await client.eio.disconnect(abort=True)
        attempt.cancel()
        await asyncio.gather(attempt, return_exceptions=True)
    return refusals[0]


HOSTILE_CREDENTIALS = {
    # daphne refuses a raw NUL in a header; a quoted cookie's octal escape reaches Django as one.
    "nul-cookie": {"headers": {"Cookie": 'sessionid="abcdefgh\\000ijklmnop"'}},
    "escaped-cookie": {"headers": {"Cookie": 'sessionid="\\342\\200\\256abcdefgh"'}},
    "nul-token": {"auth": {"token": "\x00abc"}},
    "huge-token": {"auth": {"token": "a" * 100_000}},
    "list-token": {"auth": {"token": ["x"]}},
    "object-token": {"auth": {"token": {"$ne": None}}},
    "list-auth": {"auth": ["token"]},
    "str-auth": {"auth": "token"},
}


def test_any_credential_a_client_sends_gets_an_answer(private_twin: LiveServer):
    # Before, a NUL in the cookie or the token crashed the connect handler and
    # the client waited forever for an answer.
    async def scenario() -> None:
        for transport in ("websocket", "polling"):
            for name, options in HOSTILE_CREDENTIALS.items():
                refusal = await connect_refusal(private_twin.url, transport=transport, **options)
                assert refusal["data"]["error"] == "not_authenticated", (transport, name)

    asyncio.run(scenario())


class Reader(Dashboard):
    """A dashboard that also records when the server disconnected it."""

    def __init__(self) -> None:
        super().__init__()
        self.disconnected_at: float | None = None
        self.client.on("disconnect", self._gone, namespace=NAMESPACE)

    def _gone(self, *args: Any) -> None:
        self.disconnected_at = time.monotonic()

    async def wait_disconnected(self, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while self.disconnected_at is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert self.disconnected_at is not None, f"still connected {timeout} s after the revocation"
        return self.disconnected_at


def _user(django_user_model, name: str = "reader"):
    return django_user_model.objects.create_user(name, password="a-long-password-1")


def _revoke_then_wait(url: str, revoke, **connect: Any) -> float:
    """Connect a reader, revoke its credential, return how long until the server disconnected it."""

    async def scenario() -> float:
        reader = Reader()
        await reader.client.connect(url, namespaces=[NAMESPACE], transports=["websocket"], **connect)
        try:
            await reader.wait_for(lambda s: True, timeout=5)
            await asyncio.to_thread(revoke)
            revoked_at = time.monotonic()
            return await reader.wait_disconnected(timeout=RECHECK_SECONDS + 5) - revoked_at
        finally:
            await reader.close()

    return asyncio.run(scenario())


def test_a_deleted_token_disconnects_its_open_connection(private_twin: LiveServer, django_user_model):
    token = Token.objects.create(user=_user(django_user_model))
    took = _revoke_then_wait(private_twin.url, token.delete, auth={"token": token.key})
    assert took < RECHECK_SECONDS + 3


def test_a_deactivated_user_is_disconnected(private_twin: LiveServer, django_user_model):
    user = _user(django_user_model)
    token = Token.objects.create(user=user)

    def deactivate() -> None:
        user.is_active = False
        user.save(update_fields=["is_active"])

    assert _revoke_then_wait(private_twin.url, deactivate, auth={"token": token.key}) < RECHECK_SECONDS + 3


def test_logging_out_disconnects_the_sessions_live_connection(private_twin: LiveServer, django_user_model):
    browser = Client()
    browser.force_login(_user(django_user_model))
    cookie = f"sessionid={browser.cookies['sessionid'].value}"
    took = _revoke_then_wait(private_twin.url, browser.logout, headers={"Cookie": cookie})
    assert took < RECHECK_SECONDS + 3


def test_a_password_change_ends_the_users_other_sessions_live_connections(private_twin: LiveServer, django_user_model):
    user = _user(django_user_model)
    browser = Client()
    browser.force_login(user)
    cookie = f"sessionid={browser.cookies['sessionid'].value}"

    def change_password() -> None:
        user.set_password("another-long-password-2")
        user.save()

    assert _revoke_then_wait(private_twin.url, change_password, headers={"Cookie": cookie}) < RECHECK_SECONDS + 3


def test_a_reader_whose_credential_holds_stays_connected(private_twin: LiveServer, django_user_model):
    token = Token.objects.create(user=_user(django_user_model))

    async def scenario() -> None:
        reader = Reader()
        await reader.client.connect(
            private_twin.url, namespaces=[NAMESPACE], transports=["websocket"], auth={"token": token.key}
        )
        try:
            await asyncio.sleep(RECHECK_SECONDS * 3)
            assert reader.client.connected and reader.disconnected_at is None
        finally:
            await reader.close()

    asyncio.run(scenario())


# --- Engine.IO's polling transport: a POST of many packets ------------------------------------


async def _polling_session(http: aiohttp.ClientSession, base: str) -> str:
    async with http.get(f"{base}&transport=polling") as response:
        handshake = orjson.loads((await response.text())[1:])
    sid = handshake["sid"]
    async with http.post(f"{base}&transport=polling&sid={sid}", data="40/digital-twin,") as response:
        assert response.status == 200
    async with http.get(f"{base}&transport=polling&sid={sid}") as response:
        assert "40/digital-twin" in await response.text()
    return sid


def test_a_polling_post_of_twenty_packets_is_handled_every_one(public_twin: LiveServer):
    # python-engineio decodes 16 packets per POST by default and dropped all
    # twenty silently, answering 200.
    async def scenario() -> None:
        base = f"{public_twin.url}/socket.io/?EIO=4"
        async with aiohttp.ClientSession() as http:
            sid = await _polling_session(http, base)
            packets = [f'42/digital-twin,{n}["subscribe",{{"mode":"delta"}}]' for n in range(20)]
            async with http.post(f"{base}&transport=polling&sid={sid}", data="\x1e".join(packets)) as response:
                assert response.status == 200
            acks: set[int] = set()
            deadline = time.monotonic() + 10
            while len(acks) < 20 and time.monotonic() < deadline:
                async with http.get(f"{base}&transport=polling&sid={sid}") as response:
                    for packet in (await response.text()).split("\x1e"):
                        if packet.startswith("43/digital-twin,"):
                            acks.add(int(packet.split(",", 1)[1].split("[", 1)[0]))
            assert acks == set(range(20))

    asyncio.run(scenario())


def test_a_polling_post_over_the_packet_limit_is_refused_with_a_json_400(public_twin: LiveServer):
    async def scenario() -> None:
        base = f"{public_twin.url}/socket.io/?EIO=4"
        async with aiohttp.ClientSession() as http:
            sid = await _polling_session(http, base)
            packets = ['42/digital-twin,["resync"]'] * 65
            async with http.post(f"{base}&transport=polling&sid={sid}", data="\x1e".join(packets)) as response:
                assert response.status == 400
                body = await response.json()
            assert body["error"] == "too_many_packets"

    asyncio.run(scenario())


def test_a_client_cannot_escape_the_guard_by_emitting_disconnect(private_twin: LiveServer, django_user_model):
    # An event named "disconnect" used to reach the namespace's own on_disconnect:
    # the server forgot the reader while its connection stayed open.
    token = Token.objects.create(user=_user(django_user_model))

    async def scenario() -> None:
        base = f"{private_twin.url}/socket.io/?EIO=4&transport=polling"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            async with http.get(base) as response:
                sid = orjson.loads((await response.text())[1:])["sid"]
            url = f"{base}&sid={sid}"
            connect = "40/digital-twin," + orjson.dumps({"token": token.key}).decode()
            async with http.post(url, data=connect) as response:
                assert response.status == 200
            async with http.post(url, data='42/digital-twin,["disconnect"]') as response:
                assert response.status == 200
            await asyncio.to_thread(token.delete)
            deadline = time.monotonic() + RECHECK_SECONDS + 5
            seen = ""
            while "41/digital-twin" not in seen and time.monotonic() < deadline:
                async with http.get(url) as response:
                    seen += await response.text()
            assert "41/digital-twin" in seen, "the server never disconnected the revoked reader"

    asyncio.run(scenario())
