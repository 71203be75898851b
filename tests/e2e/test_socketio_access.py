"""End to end: with private reads, only readers get onto /digital-twin; signed agents feed it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import aiohttp
import orjson
import pytest
import socketio
from django.test import Client
from rest_framework.authtoken.models import Token

from hosts.credentials import signature_compute
from hosts.services import enrollment_key_create
from tests.conftest import sample_dict
from tests.e2e.conftest import LiveServer, server_start, server_stop
from tests.e2e.test_socketio import Dashboard, host_of

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def private_twin(transactional_db, django_db_serialized_rollback, tmp_path, channel_prefix) -> Iterator[LiveServer]:
    server = server_start(
        tmp_path, CHANNEL_LAYER_PREFIX=channel_prefix, TWIN_AGENT_AUTH="signed", TWIN_PUBLIC_READ="false"
    )
    yield server
    server_stop(server)


@pytest.fixture
def reader_token(django_user_model) -> str:
    user = django_user_model.objects.create_user("dashboard", password="a-long-password-1")
    return Token.objects.create(user=user).key


def test_a_connection_without_credentials_is_refused(private_twin: LiveServer):
    async def scenario() -> None:
        client = socketio.AsyncClient(reconnection=False)
        reasons: list = []
        client.on("connect_error", reasons.append, namespace="/digital-twin")
        with pytest.raises(socketio.exceptions.ConnectionError):
            await client.connect(private_twin.url, namespaces=["/digital-twin"], transports=["websocket"])
        assert reasons and reasons[0]["message"].startswith("not_authenticated")
        assert reasons[0]["data"]["error"] == "not_authenticated"
        await client.eio.disconnect(abort=True)

    asyncio.run(scenario())


def test_a_wrong_token_is_refused(private_twin: LiveServer):
    async def scenario() -> None:
        client = socketio.AsyncClient(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await client.connect(
                private_twin.url, namespaces=["/digital-twin"], transports=["websocket"], auth={"token": "nope"}
            )
        await client.eio.disconnect(abort=True)

    asyncio.run(scenario())


def test_a_session_cookie_of_a_logged_in_user_is_admitted(private_twin: LiveServer, django_user_model):
    user = django_user_model.objects.create_user("operator", password="a-long-password-1")
    browser = Client()
    browser.force_login(user)
    cookie = f"sessionid={browser.cookies['sessionid'].value}"

    async def scenario() -> None:
        dashboard = Dashboard()
        await dashboard.client.connect(
            private_twin.url, namespaces=["/digital-twin"], transports=["websocket"], headers={"Cookie": cookie}
        )
        try:
            assert (await dashboard.wait_for(lambda s: True, timeout=5))["type"] == "twin-state"
        finally:
            await dashboard.close()

    asyncio.run(scenario())


def test_a_registered_agents_signed_batch_reaches_a_token_holding_dashboard(private_twin: LiveServer, reader_token):
    _, enrollment = enrollment_key_create(name="e2e")

    async def scenario() -> None:
        dashboard = Dashboard()
        await dashboard.client.connect(
            private_twin.url, namespaces=["/digital-twin"], transports=["websocket"], auth={"token": reader_token}
        )
        try:
            await dashboard.wait_for(lambda s: True, timeout=5)
            async with aiohttp.ClientSession() as http:
                registration = await http.post(
                    f"{private_twin.url}/api/hosts/register",
                    json={"hostname": "signed-01", "platform": "Linux-x86_64", "agent_version": "1.0.0"},
                    headers={"Authorization": f"Bearer {enrollment}"},
                )
                assert registration.status == 201
                credential = await registration.json()
                body = orjson.dumps(
                    {"agent_session": "e2e", "sequence": 1, "samples": [sample_dict("signed-01", cpu_load=31.0)]}
                )
                stamp = str(int(time.time()))
                headers = {
                    "Content-Type": "application/json",
                    "X-Twin-Key-Id": credential["keyId"],
                    "X-Twin-Timestamp": stamp,
                    "X-Twin-Signature": signature_compute(
                        secret=credential["signingSecret"], timestamp=stamp, body=body
                    ),
                }
                batch = await http.post(f"{private_twin.url}/api/metrics/batch", data=body, headers=headers)
                assert batch.status == 202, await batch.text()
            state = await dashboard.wait_for(
                lambda s: (h := host_of(s, "signed-01")) is not None and h["metrics"]["cpuLoad"] == 31.0
            )
            assert host_of(state, "signed-01")["status"] == "online"
        finally:
            await dashboard.close()

    asyncio.run(scenario())


def test_a_browser_from_a_foreign_origin_is_refused(private_twin: LiveServer, reader_token):
    async def scenario() -> None:
        client = socketio.AsyncClient(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await client.connect(
                private_twin.url,
                namespaces=["/digital-twin"],
                transports=["websocket"],
                headers={"Origin": "http://evil.example"},
                auth={"token": reader_token},
            )
        await client.eio.disconnect(abort=True)
        allowed = Dashboard()
        await allowed.client.connect(
            private_twin.url,
            namespaces=["/digital-twin"],
            transports=["websocket"],
            headers={"Origin": "http://localhost:8000"},
            auth={"token": reader_token},
        )
        assert allowed.client.connected
        await allowed.close()

    asyncio.run(scenario())


def test_a_page_served_by_the_twin_on_any_port_may_connect(private_twin: LiveServer, reader_token):
    # The server listens on a free port, not one of TWIN_ALLOWED_ORIGINS: its own origin is still accepted.
    async def scenario() -> None:
        own = Dashboard()
        await own.client.connect(
            private_twin.url,
            namespaces=["/digital-twin"],
            transports=["polling"],
            headers={"Origin": private_twin.url},
            auth={"token": reader_token},
        )
        assert own.client.connected
        await own.close()

    asyncio.run(scenario())


def test_a_page_on_a_name_the_twin_does_not_serve_is_refused_even_as_its_own_origin(private_twin, reader_token):
    # DNS rebinding: evil.example resolves to the twin, so Origin and Host agree, but the name is not in ALLOWED_HOSTS.
    async def scenario() -> None:
        client = socketio.AsyncClient(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await client.connect(
                private_twin.url,
                namespaces=["/digital-twin"],
                transports=["polling"],
                headers={"Origin": "http://evil.example:8000", "Host": "evil.example:8000"},
                auth={"token": reader_token},
            )
        await client.eio.disconnect(abort=True)

    asyncio.run(scenario())
