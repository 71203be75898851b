"""What clients may send on the Socket.IO transport, checked before python-socketio and python-engineio act on it.

Three holes the libraries leave, each found by sending them bytes:

1. **Packets per polling request.** A client on the polling transport sends
   what it has queued in one POST, its packets separated by ``\\x1e``.
   python-engineio decodes at most ``engineio.payload.Payload.max_decode_packets``
   (16 by default); with more, its handler raises, logs a traceback and still
   answers ``200 OK``, so every packet of that POST is lost and the client never
   knows (a Python client queues every emit made during a long poll into one
   POST; so does the JavaScript one, up to its byte limit). The limit is raised
   to ``POLLING_MAX_PACKETS`` (the class attribute is python-engineio's hook),
   more than a dashboard queues between two polls, and a POST with more is
   refused before python-engineio reads it: a ``400`` with a JSON error, which
   clients treat as a transport error (they close and reconnect), not as a
   success. A POST's bytes stay bounded by ``max_http_buffer_size`` (1,000,000).
2. **Engine.IO packets that cannot be decoded** (a type that is not a digit,
   binary frames the twin never uses): python-engineio raised inside its
   handlers and logged a traceback per packet. A polling POST holding one is a
   ``400``; a websocket frame holding one ends that connection.
3. **Socket.IO packets of the wrong shape** (an event that is not a list
   headed by a name, an event named ``disconnect``, binary attachments, JSON
   nested a thousand deep): python-socketio raised inside its handlers, or
   called a handler with arguments it does not take. ``TwinPacket`` (the
   documented way to give python-socketio a packet class) decodes such a
   packet as an event named ``MALFORMED_EVENT``, which the namespace ignores
   (a connection request whose auth is not a JSON object is decoded without
   auth, so that it is still answered).
   An event named ``disconnect`` would have called the namespace's own
   ``on_disconnect`` while the client stayed connected, hiding it from the
   guard that disconnects revoked readers.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from engineio import payload
from socketio import packet as sio_packet

from twin.live.instruments import packet_encoded

logger = logging.getLogger(__name__)

POLLING_MAX_PACKETS = 64
SEPARATOR = b"\x1e"
# Engine.IO packet types a client may send as text: close, ping (the websocket upgrade's
# probe), pong, message, upgrade, noop. Over polling a ping or a noop made python-engineio
# refuse the packet by closing the session and waiting, forever, for a poll to take its
# last packet: the POST never got an answer. Clients of protocol 4 send neither there.
WEBSOCKET_PACKET_TYPES = frozenset("123456")
CLOSE, MESSAGE = "1", "4"
SOCKETIO_PACKET_TYPES = frozenset("0123456")
POLLING_PACKET_TYPES = frozenset("1345")
# The event a malformed Socket.IO packet becomes (not a name a client can emit: see TwinPacket).
MALFORMED_EVENT = "malformed packet"
# Names python-socketio gives its own events; a client's event may not take them.
RESERVED_EVENTS = frozenset({"connect", "connect_error", "disconnect", "__disconnect_final", MALFORMED_EVENT})

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


def engineio_packet_acceptable(packet: str | bytes | None, *, types: frozenset[str] = WEBSOCKET_PACKET_TYPES) -> bool:
    """True for an Engine.IO packet python-engineio can decode and this twin expects from a client.

    Text whose first character is one of ``types``; no binary packets
    (``b``-prefixed base64 or binary frames): nothing on ``/digital-twin`` uses
    them. A message carries a Socket.IO packet, which starts with its type, a
    digit: python-engineio decodes any other message as JSON (``4null`` became
    ``None``, ``4[1]`` a list), which python-socketio could not handle.
    """
    if not isinstance(packet, str) or packet[:1] not in types:
        return False
    return packet[:1] != MESSAGE or packet[1:2] in SOCKETIO_PACKET_TYPES


def polling_body_acceptable(body: bytes) -> bool:
    """True when every packet of a polling POST body is acceptable (a JSONP body is left to python-engineio).

    A close packet ends the session, so it comes last: python-engineio went on
    with the packets after it on a session python-socketio had already
    forgotten, and raised.
    """
    if body.startswith(b"d="):
        return True
    try:
        packets = body.decode().split(SEPARATOR.decode())
    except UnicodeDecodeError:
        return False
    if any(p[:1] == CLOSE for p in packets[:-1]):
        return False
    return all(engineio_packet_acceptable(p, types=POLLING_PACKET_TYPES) for p in packets)


class EngineIOGuard:
    """ASGI middleware in front of Socket.IO: what python-engineio would mishandle never reaches it.

    A polling POST over the limits, or holding a packet python-engineio cannot
    decode, is refused with a JSON error; a websocket frame holding one ends
    that connection, as if the client had left.
    """

    def __init__(self, app: ASGIApp, *, path: str, max_bytes: int) -> None:
        self.app = app
        self.path = path
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not scope["path"].startswith(self.path):
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await self.app(scope, _frames_checked(receive), send)
        elif scope["type"] == "http" and scope["method"] == "POST":
            await self._post(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _post(self, scope: Scope, receive: Receive, send: Send) -> None:
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
        if not polling_body_acceptable(bytes(body)):
            logger.info("refused a polling request holding a packet that is not Engine.IO")
            await _answer(send, 400, "malformed_packet", "A packet of this request is not an Engine.IO packet.")
            return
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


def _frames_checked(receive: Receive) -> Receive:
    """A websocket ``receive`` where a frame python-engineio cannot decode, or one after a close, ends it."""
    closed = False

    async def checked() -> dict[str, Any]:
        nonlocal closed
        message = await receive()
        if message["type"] == "websocket.receive":
            frame = message.get("text") if message.get("text") is not None else message.get("bytes")
            if closed or not engineio_packet_acceptable(frame):
                logger.info(
                    "closed a websocket that sent a frame that is not an Engine.IO packet, or one after closing"
                )
                return {"type": "websocket.disconnect", "code": 1003}
            closed = frame[:1] == CLOSE
        return message

    return checked


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


# A packet python-socketio builds to send, rather than one it decodes from a client.
_OUTGOING: Any = object()


class TwinPacket(sio_packet.Packet):
    """python-socketio's packet, where a packet of the wrong shape decodes as ``MALFORMED_EVENT``.

    Given to the server as its ``serializer`` (python-socketio's hook for a
    packet class). The namespace ignores ``MALFORMED_EVENT``; python-socketio
    logs one line for a packet naming a namespace the client is not in.
    """

    # Nothing on /digital-twin is binary: binary events and attachments are malformed.
    uses_binary_events = False

    def __init__(self, *args: Any, encoded_packet: Any = _OUTGOING, **kwargs: Any) -> None:
        if encoded_packet is _OUTGOING:
            super().__init__(*args, **kwargs)
            return
        super().__init__(*args, encoded_packet=encoded_packet, **kwargs)
        if not encoded_packet:
            # python-socketio decodes nothing from an empty packet (or from the
            # None or False python-engineio made of "4null" or "4false"), leaving
            # an event without data.
            self._malformed("an empty packet")

    def encode(self) -> Any:
        encoded = super().encode()
        if self.packet_type == sio_packet.EVENT:
            packet_encoded(self.data, encoded)  # its size, for the bytes sent (twin.live.instruments)
        return encoded

    def decode(self, encoded_packet: Any) -> int:
        try:
            if not isinstance(encoded_packet, str):
                raise ValueError("a Socket.IO packet is text")
            attachments = super().decode(encoded_packet)
            problem = self._problem()
        except (ValueError, TypeError, IndexError, RecursionError) as exc:
            problem = str(exc) or type(exc).__name__
            attachments = 0
        if problem is None:
            return attachments
        self._malformed(problem)
        return 0

    def _malformed(self, problem: str) -> None:
        if getattr(self, "packet_type", None) == sio_packet.CONNECT:
            # A connection request must be answered, whatever its auth: auth that
            # is not a JSON object is no auth, and the namespace decides.
            self.data = None
            return
        self.packet_type = sio_packet.EVENT
        self.data = [MALFORMED_EVENT, problem]
        self.id = None
        if not isinstance(getattr(self, "namespace", None), str):
            self.namespace = None

    def _problem(self) -> str | None:
        """Why a decoded packet cannot be handled, or None."""
        kind, data = self.packet_type, self.data
        if kind == sio_packet.EVENT:
            if not (isinstance(data, list) and data and isinstance(data[0], str)):
                return "an event is a list headed by its name"
            if data[0] in RESERVED_EVENTS:
                return f"{data[0]!r} is not an event a client may send"
            return None
        if kind == sio_packet.ACK:
            return None if isinstance(data, list) else "an acknowledgement is a list"
        if kind == sio_packet.CONNECT:
            return None if data is None or isinstance(data, dict) else "connect data (auth) is a JSON object"
        if kind == sio_packet.DISCONNECT:
            return None
        return f"packet type {kind!r} is not accepted from a client"
