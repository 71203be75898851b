"""The push floor: a bare python-socketio server that broadcasts a given payload.

Served by daphne like the twin. ``POST /broadcast`` with a JSON body emits it
as ``twin-state`` to every client of ``/digital-twin`` and answers once the
emit has been handed to the transport, just as the twin's push does.
"""

from __future__ import annotations

from typing import Any

import orjson
import socketio

from twin.socketio_json import OrjsonForSocketIO

sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*", json=OrjsonForSocketIO)


@sio.on("connect", namespace="/digital-twin")
async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
    return None


async def broadcast_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if scope["path"] == "/broadcast":
        await sio.emit("twin-state", orjson.loads(body), namespace="/digital-twin")
    status = 200 if scope["path"] in ("/broadcast", "/health") else 404
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


application = socketio.ASGIApp(sio, other_asgi_app=broadcast_app)
