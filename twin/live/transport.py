"""Engine.IO's polling transport: its packets-per-request limit, made explicit and answered.

A client on the polling transport sends what it has queued in one POST, its
packets separated by ``\\x1e``. python-engineio decodes at most
``engineio.payload.Payload.max_decode_packets`` of them (16 by default); with
more, its handler raises, logs a traceback and still answers ``200 OK``, so
every packet of that POST is lost and the client never knows (a Python client
queues every emit made during a long poll into one POST, and so does the
JavaScript one up to its byte limit).

So the limit is raised to ``POLLING_MAX_PACKETS`` (the class attribute is
python-engineio's own hook for it), which is more than a dashboard queues
between two polls (it emits ``subscribe`` and ``resync`` only), and a POST
with more is refused before python-engineio reads it: ``400`` with a JSON
error, which clients treat as a transport error (they close and reconnect)
rather than as a success. A POST's bytes stay bounded by python-engineio's
``max_http_buffer_size`` (1,000,000); a larger one is a ``413``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from engineio import payload

logger = logging.getLogger(__name__)

POLLING_MAX_PACKETS = 64
SEPARATOR = b"\x1e"

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def engineio_limits_apply() -> None:
    """Let python-engineio decode as many packets per POST as ``PollingPacketLimit`` lets through."""
    payload.Payload.max_decode_packets = POLLING_MAX_PACKETS


def packets_counted(body: bytes) -> int:
    """How many Engine.IO packets a polling POST body carries (a JSONP body is URL-encoded)."""
    if not body:
        return 0
    if body.startswith(b"d="):
        return body.count(SEPARATOR) + body.upper().count(b"%1E") + 1
    return body.count(SEPARATOR) + 1


class PollingPacketLimit:
    """ASGI middleware in front of Socket.IO: a polling POST over the limits is refused with a JSON error."""

    def __init__(self, app: ASGIApp, *, path: str, max_bytes: int) -> None:
        self.app = app
        self.path = path
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].startswith(self.path):
            await self.app(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await _answer(
                    send, 413, "payload_too_large", f"A polling request carries at most {self.max_bytes} bytes."
                )
                return
            if not message.get("more_body", False):
                break
        count = packets_counted(bytes(body))
        if count > POLLING_MAX_PACKETS:
            logger.warning("refused a polling request of %d Engine.IO packets (at most %d)", count, POLLING_MAX_PACKETS)
            await _answer(
                send,
                400,
                "too_many_packets",
                f"A polling request carries at most {POLLING_MAX_PACKETS} packets; this one carried {count}.",
            )
            return
        await self.app(scope, _replay(bytes(body), receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the body already read, then whatever comes next."""
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _answer(send: Send, status: int, code: str, detail: str) -> None:
    content = orjson.dumps({"error": code, "detail": detail})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})
