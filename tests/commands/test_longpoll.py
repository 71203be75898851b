"""commands.longpoll: the wait re-reads the database after each wake-up and ends when the agent hangs up."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from django.db import close_old_connections

from commands.longpoll import pending_answer, pending_asgi, wait_parse
from commands.waiters import agent_events_deliver
from common.asyncsync import db_call
from common.events import Audience, EventType
from hosts.credentials import signature_compute

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _signed(agent, path: str) -> dict[str, str]:
    stamp = str(int(time.time()))
    return {
        "x-twin-key-id": agent.key_id,
        "x-twin-timestamp": stamp,
        "x-twin-signature": signature_compute(secret=agent.secret, timestamp=stamp, body=f"GET {path}".encode()),
    }


def _wake(hostname: str) -> None:
    agent_events_deliver(
        {"type": EventType.INVOCATION_AVAILABLE, "audience": Audience.AGENT, "host": hostname, "payload": {}}
    )


@pytest.mark.parametrize(
    ("raw", "wait"), [(None, 25.0), ("0", 0.0), ("2.5", 2.5), ("25", 25.0), ("26", None), ("x", None)]
)
def test_the_wait_is_zero_to_twenty_five_seconds(raw, wait):
    assert wait_parse(raw) == wait


def test_a_wake_up_with_nothing_new_makes_the_poll_look_again_and_keep_waiting(make_agent):
    agent = make_agent("titan-01")
    path = "/api/commands/pending?wait=1"
    looks: list[str] = []

    async def counting(fn, /, **kwargs: Any) -> Any:
        looks.append(fn.__name__)
        return await db_call(fn, **kwargs)

    async def scenario() -> tuple[int, dict[str, Any], float]:
        started = time.monotonic()
        poll = asyncio.ensure_future(
            pending_answer(headers=_signed(agent, path), full_path=path, wait_raw="1", run=counting)
        )
        await asyncio.sleep(0.3)
        _wake("titan-01")  # an event, but nothing in the database for this host
        status, body, _ = await poll
        return status, body, time.monotonic() - started

    status, body, took = asyncio.run(scenario())
    close_old_connections()
    assert (status, body) == (200, {"invocations": []})
    # A look at first, one after the wake-up, and a last one when the wait ends (a lost event costs no more).
    assert looks == ["pending_authenticate", *["invocations_dispatch"] * 3]
    assert took >= 0.8  # it went on waiting until the wait ended (in its last fifth)


def test_an_agent_that_hangs_up_ends_its_poll_and_is_sent_nothing(make_agent):
    agent = make_agent("titan-01")
    path = "/api/commands/pending"
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(k.encode(), v.encode()) for k, v in _signed(agent, path).items()],
    }
    sent: list[dict[str, Any]] = []

    async def scenario() -> None:
        hang_up = asyncio.Event()

        async def receive() -> dict[str, Any]:
            if not hang_up.is_set():
                hang_up.set()
                return {"type": "http.request", "body": b"", "more_body": False}
            await asyncio.sleep(0.5)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        # The default wait is 25 s: returning well before means the hang-up ended it.
        await asyncio.wait_for(pending_asgi(scope, receive, send), timeout=10)

    asyncio.run(scenario())
    close_old_connections()
    assert sent == []


def test_an_unsigned_poll_is_answered_401_with_the_agents_realm():
    scope = {"type": "http", "method": "GET", "path": "/api/commands/pending", "query_string": b"wait=0", "headers": []}
    sent: list[dict[str, Any]] = []

    async def main() -> None:
        requested = asyncio.Event()

        async def receive() -> dict[str, Any]:
            if requested.is_set():
                await asyncio.Event().wait()  # as a server does: nothing more until the client leaves
            requested.set()
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await asyncio.wait_for(pending_asgi(scope, receive, send), timeout=10)

    asyncio.run(main())
    start, body = sent
    assert start["status"] == 401
    assert (b"www-authenticate", b'Twin-HMAC-SHA256 realm="agents"') in start["headers"]
    assert b'"error":"not_authenticated"' in body["body"]
