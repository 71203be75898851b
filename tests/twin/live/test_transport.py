"""twin.live.transport: what clients may send on the Socket.IO transport, checked before the libraries act on it."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from socketio import packet as sio_packet

from twin.live.transport import (
    MALFORMED_EVENT,
    POLLING_MAX_PACKETS,
    EngineIOGuard,
    TwinPacket,
    engineio_packet_acceptable,
    packets_counted,
    polling_body_acceptable,
)
from twin.socketio_json import OrjsonForSocketIO

TwinPacket.json = OrjsonForSocketIO


def decoded(encoded) -> TwinPacket:
    return TwinPacket(encoded_packet=encoded)


@pytest.mark.parametrize(
    "encoded",
    ['2/digital-twin,["subscribe",{"mode":"delta"}]', '2/digital-twin,7["resync"]', "0/digital-twin,", '0{"token":"x"}',
     "1/digital-twin,", '3/digital-twin,7[{"mode":"full"}]'],
)  # fmt: skip
def test_well_formed_packets_decode_as_python_socketio_does(encoded):
    assert decoded(encoded).data == sio_packet.Packet(encoded_packet=encoded).data


@pytest.mark.parametrize(
    ("encoded", "problem"),
    [
        ("2/digital-twin,", "list headed by its name"),
        ('2/digital-twin,{"a":1}', "list headed by its name"),
        ("2/digital-twin,[]", "list headed by its name"),
        ("2/digital-twin,[1]", "list headed by its name"),
        ('2/digital-twin,["disconnect"]', "not an event a client may send"),
        ('2/digital-twin,["connect",{}]', "not an event a client may send"),
        ('2/digital-twin,["malformed packet"]', "not an event a client may send"),
        ('51-/digital-twin,["x",{"_placeholder":true,"num":0}]', "not accepted"),
        ('4/digital-twin,"nope"', "not accepted"),
        ("9", "not accepted"),
        ("2/digital-twin,[" + "[" * 2000, ""),
        ("2/digital-twin,12345678901234567890123", ""),
        ("", "an empty"),
    ],
)
def test_malformed_packets_decode_as_an_event_the_namespace_ignores(encoded, problem):
    packet = decoded(encoded)
    assert packet.packet_type == sio_packet.EVENT
    assert packet.data[0] == MALFORMED_EVENT
    assert problem in packet.data[1]
    assert packet.id is None


@pytest.mark.parametrize("value", [[1, 2], {"a": 1}, 5, False, 0, None])
def test_a_message_python_engineio_decoded_into_json_is_malformed_not_a_crash(value):
    packet = decoded(value)
    assert packet.data[0] == MALFORMED_EVENT


@pytest.mark.parametrize("encoded", ["0/digital-twin,[1,2]", '0/digital-twin,"tok"', "0/digital-twin,-Infinity"])
def test_a_connection_request_with_auth_that_is_not_an_object_is_answered_without_auth(encoded):
    packet = decoded(encoded)
    assert (packet.packet_type, packet.namespace, packet.data) == (sio_packet.CONNECT, "/digital-twin", None)


@pytest.mark.parametrize(
    ("body", "expected"),
    [(b"", 0), (b"40/digital-twin,", 1), (b"3\x1e3\x1e3", 3), (b"d=3%1e3", 2)],
)
def test_packets_are_counted_as_python_engineio_splits_them(body, expected):
    assert packets_counted(body) == expected


@pytest.mark.parametrize("frame", ["1", "2probe", "3", "40/digital-twin,", "5", "6"])
def test_websocket_frames_of_the_protocol_are_acceptable(frame):
    assert engineio_packet_acceptable(frame)


@pytest.mark.parametrize("frame", ["", "0", "7", "x", "\u00b7", "bAAAA", b"\x00\x01", None, "4null", "4[1]", "4", "4x"])
def test_websocket_frames_python_engineio_cannot_decode_or_the_twin_never_uses_are_not(frame):
    assert not engineio_packet_acceptable(frame)


@pytest.mark.parametrize("body", [b"2", b"6", b"3\x1e2probe", b"x", b"\xff", b"4hi\x1e", b"1\x1e40/digital-twin,"])
def test_a_polling_body_with_a_ping_noop_garbage_or_packets_after_a_close_is_refused(body):
    # A ping or a noop made python-engineio close the session and wait, forever, to answer;
    # a packet after a close reached a session python-socketio had forgotten.
    assert not polling_body_acceptable(body)


def test_a_polling_body_ending_with_a_close_is_acceptable():
    assert polling_body_acceptable(b'42/digital-twin,["resync"]\x1e1')


def _post(body: bytes) -> tuple[int, dict, bool]:
    reached = []

    async def app(scope, receive, send):
        message = await receive()
        reached.append(message["body"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    sent = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    guard = EngineIOGuard(app, path="/socket.io/", max_bytes=1_000_000)
    scope = {"type": "http", "method": "POST", "path": "/socket.io/"}
    asyncio.run(guard(scope, receive, send))
    payload = orjson.loads(sent[1]["body"]) if sent[0]["status"] != 200 else {}
    return sent[0]["status"], payload, reached == [body]


def test_a_polling_post_within_the_limits_reaches_python_engineio_unchanged():
    body = b"\x1e".join([b'42/digital-twin,["resync"]'] * POLLING_MAX_PACKETS)
    status, _, reached = _post(body)
    assert (status, reached) == (200, True)


def test_a_polling_post_over_the_packet_limit_is_a_json_400():
    status, payload, reached = _post(b"\x1e".join([b"3"] * (POLLING_MAX_PACKETS + 1)))
    assert (status, payload["error"], reached) == (400, "too_many_packets", False)


def test_a_polling_post_over_the_byte_limit_is_a_json_413():
    status, payload, reached = _post(b"4" + b"x" * 1_000_001)
    assert (status, payload["error"], reached) == (413, "payload_too_large", False)
