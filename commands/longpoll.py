"""The agents' long poll, ``GET /api/commands/pending?wait=25``: no thread and no database connection while it waits.

Under daphne the twin's ASGI app (``twinsite.asgi``) hands this path to
``pending_asgi`` before Django. Django's ASGI handler keeps a thread for each
request as long as the request lasts (its thread-sensitive context, which the
``request_started`` signal and the sync middleware use), so 1,000 agents
waiting in Django would be 1,000 idle threads. ``commands.views.pending_view``
serves the same answer through Django, for the test client and WSGI.

Both call ``pending_answer``: check the signature (a whole sync function on a
worker thread), then look for work, wait on the event loop for this host's
``invocation.available`` event (``commands.waiters``), and look again after
each wake-up, until the wait ends. Each look runs ``invocations_dispatch`` on a
worker thread whose database connection is given back at once
(``common.asyncsync.db_call``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

import orjson
from django.conf import settings
from django.utils import timezone
from rest_framework.exceptions import APIException, AuthenticationFailed

from commands.models import Cause
from commands.services import invocations_dispatch
from commands.waiters import AgentEventListener
from common.asyncsync import db_call
from common.errors import DATABASE_DOWN
from hosts.authentication import agent_signature_check, request_line_payload
from hosts.credentials import HEADER_KEY_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP
from hosts.selectors import AgentIdentity

PENDING_PATH = "/api/commands/pending"
WAIT_MAX_SECONDS = 25.0
WAIT_JITTER = 0.2
AGENT_REALM = 'Twin-HMAC-SHA256 realm="agents"'

# How a sync function is run from the poll: ``run(fn, **kwargs)``.
SyncRunner = Callable[..., Awaitable[Any]]
Answer = tuple[int, dict[str, Any], dict[str, str]]


def pending_authenticate(*, key_id: str, timestamp: str, signature: str, full_path: str) -> AgentIdentity:
    """The signed agent asking, or an ``APIException`` (the same checks and codes as a signed batch)."""
    identity = agent_signature_check(
        key_id=key_id,
        timestamp=timestamp,
        signature=signature,
        payload=lambda: request_line_payload(method="GET", full_path=full_path),
    )
    if identity is None:
        raise AuthenticationFailed(
            f"Sign the request ({HEADER_KEY_ID}, {HEADER_TIMESTAMP}, {HEADER_SIGNATURE} over "
            "'<timestamp>.GET <path?query>'): only a host's own agent reads its invocations.",
            code="not_authenticated",
        )
    return identity


def wait_parse(raw: str | None) -> float | None:
    """The wait asked for, 0 to 25 seconds (25 when absent), or None when it is not one."""
    if raw is None:
        return WAIT_MAX_SECONDS
    try:
        wait = float(raw)
    except ValueError:
        return None
    return wait if 0 <= wait <= WAIT_MAX_SECONDS else None


def _error(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> Answer:
    return status, {"error": code, "detail": detail}, headers or {}


async def pending_answer(
    *, headers: Mapping[str, str], full_path: str, wait_raw: str | None, run: SyncRunner = db_call
) -> Answer:
    """The long poll, free of any HTTP framework: status, JSON body and extra headers.

    1. Check the signature over ``GET <full_path>``.
    2. Start listening for this host's ``invocation.available`` events, then look
       for work (moving it to ``dispatched``); answer at once if there is some.
    3. Otherwise wait for an event or the end of the wait, and look again.
    """
    try:
        identity = await run(
            pending_authenticate,
            key_id=headers.get(HEADER_KEY_ID.lower(), ""),
            timestamp=headers.get(HEADER_TIMESTAMP.lower(), ""),
            signature=headers.get(HEADER_SIGNATURE.lower(), ""),
            full_path=full_path,
        )
    except APIException as exc:
        code = exc.get_codes()
        extra = {"WWW-Authenticate": AGENT_REALM} if exc.status_code == 401 else {}
        return _error(exc.status_code, code if isinstance(code, str) else "error", str(exc.detail), extra)
    except DATABASE_DOWN:
        return _error(
            503,
            "database_unavailable",
            "The database cannot be reached; retry later.",
            {"Retry-After": str(settings.TWIN_RETRY_AFTER_SECONDS)},
        )
    wait = wait_parse(wait_raw)
    if wait is None:
        return _error(400, "invalid_wait", f"wait is a number of seconds from 0 to {WAIT_MAX_SECONDS:g}.")
    loop = asyncio.get_running_loop()
    # Each wait ends at a random point of its last fifth: agents that started together (after a
    # restart, say) drift apart instead of all asking again at the same instant, every time.
    deadline = loop.time() + wait * random.uniform(1 - WAIT_JITTER, 1)
    try:
        with AgentEventListener(identity.hostname) as listener:
            while True:
                invocations = await run(
                    invocations_dispatch, host_id=identity.host_id, now=timezone.now(), cause=Cause.POLL
                )
                remaining = deadline - loop.time()
                if invocations or remaining <= 0:
                    return 200, {"invocations": invocations}, {}
                await listener.wait(remaining)
    except DATABASE_DOWN:
        return _error(
            503,
            "database_unavailable",
            "The database cannot be reached; retry later.",
            {"Retry-After": str(settings.TWIN_RETRY_AFTER_SECONDS)},
        )


async def _disconnected(receive: Callable[[], Awaitable[dict[str, Any]]]) -> None:
    """Return when the client goes away (after its request, ASGI servers send nothing else)."""
    while (await receive())["type"] != "http.disconnect":
        await asyncio.sleep(0.1)  # never spin on a server that answers at once


async def pending_asgi(
    scope: dict[str, Any],
    receive: Callable[[], Awaitable[dict[str, Any]]],
    send: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    """``GET /api/commands/pending`` as a bare ASGI app: the poll, ended early if the agent hangs up."""
    while True:  # a GET has no body, but the request is read to its end
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        if not message.get("more_body", False):
            break
    headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
    query = scope.get("query_string", b"").decode("latin-1")
    path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
    waits = parse_qs(query).get("wait")
    poll = asyncio.ensure_future(
        pending_answer(
            headers=headers, full_path=f"{path}?{query}" if query else path, wait_raw=waits[-1] if waits else None
        )
    )
    gone = asyncio.ensure_future(_disconnected(receive))
    await asyncio.wait({poll, gone}, return_when=asyncio.FIRST_COMPLETED)
    if not poll.done():
        # Anything handed out meanwhile stays dispatched and is handed out again on the next poll.
        poll.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await poll
        return
    gone.cancel()
    status, body, extra = poll.result()
    response_headers = [
        (b"content-type", b"application/json"),
        (b"cache-control", b"no-store"),
        (b"x-content-type-options", b"nosniff"),
        *((name.lower().encode(), value.encode()) for name, value in extra.items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": response_headers})
    await send({"type": "http.response.body", "body": orjson.dumps(body)})
