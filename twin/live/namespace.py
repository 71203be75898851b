"""``/digital-twin``: who may connect, and what clients may ask."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import socketio
from django.conf import settings

from twin.live.calls import db_call
from twin.live.emitter import FULL_ROOM, NAMESPACE, STAFF_ROOM
from twin.selectors import reader_identify, session_key_from_cookie_header

if TYPE_CHECKING:
    from twin.live import TwinLive


class TwinNamespace(socketio.AsyncNamespace):
    """``/digital-twin``: a client gets ``twin-state`` at once, then after every change.

    A client that emits ``subscribe`` with ``{"mode": "delta"}`` gets one full
    ``twin-state`` carrying a ``version``, then ``twin-delta`` events; on a gap
    in versions it emits ``resync`` for a fresh full state. Staff readers also
    get the events only staff may see.
    """

    def __init__(self, live: TwinLive) -> None:
        super().__init__(NAMESPACE)
        self.live = live

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        """Admit readers only (unless ``TWIN_PUBLIC_READ``): an API token in the auth payload, or a session cookie.

        Django's middleware never sees Socket.IO traffic, so this is the check.
        """
        token = auth.get("token") if isinstance(auth, dict) and isinstance(auth.get("token"), str) else None
        session_key = session_key_from_cookie_header(environ.get("HTTP_COOKIE", ""))
        reader = await db_call(reader_identify, token=token, session_key=session_key) if token or session_key else None
        if reader is None and not settings.TWIN_PUBLIC_READ:
            # Socket.IO clients see this as the connect_error's message and data.
            detail = "Send {'token': '<API token>'} as the auth payload, or log in first."
            raise socketio.exceptions.ConnectionRefusedError(
                f"not_authenticated: {detail}", {"error": "not_authenticated", "detail": detail}
            )
        self.live.ensure_started()
        await self.enter_room(sid, FULL_ROOM)
        if reader is not None and reader.is_staff:
            await self.enter_room(sid, STAFF_ROOM)
        self.live.emitter.greet(sid)

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        self.live.emitter.forget(sid)

    async def on_subscribe(self, sid: str, data: Any = None) -> dict[str, Any]:
        """``subscribe`` ``{"mode": "delta"}`` (or ``"full"``); answered with the mode."""
        mode = data.get("mode") if isinstance(data, dict) else None
        if mode not in ("delta", "full"):
            return {"error": "bad_mode", "detail": "Subscribe with {'mode': 'delta'} or {'mode': 'full'}."}
        return await self.live.emitter.subscribe(sid, mode)

    async def on_resync(self, sid: str, data: Any = None) -> dict[str, Any]:
        """A delta client that missed a version asks for the full state again."""
        return await self.live.emitter.subscribe(sid, "delta")
