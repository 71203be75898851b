"""``/digital-twin``: who may connect, and what clients may ask."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import socketio
from django.conf import settings

from common.asyncsync import db_call
from common.errors import DATABASE_DOWN
from twin.audiences import reader_rooms
from twin.live.emitter import FULL_ROOM, NAMESPACE
from twin.live.transport import MALFORMED_EVENT
from twin.readers import Reader, reader_identify, session_key_from_cookie_header

if TYPE_CHECKING:
    from twin.live import TwinLive

logger = logging.getLogger(__name__)


def _refusal(code: str, detail: str) -> socketio.exceptions.ConnectionRefusedError:
    # Socket.IO clients see this as the connect_error's message and data.
    return socketio.exceptions.ConnectionRefusedError(f"{code}: {detail}", {"error": code, "detail": detail})


class TwinNamespace(socketio.AsyncNamespace):
    """``/digital-twin``: a client gets ``twin-state`` at once, then after every change.

    A client that emits ``subscribe`` with ``{"mode": "delta"}`` gets one full
    ``twin-state`` carrying a ``version``, then ``twin-delta`` events (with
    ``"fields": true``, only the keys that changed in each host); on a gap
    in versions it emits ``resync`` for a fresh full state. Staff readers also
    get the events whose REST permissions they hold (``twin.audiences``).

    Every client event is handled by an ``on_<event>(sid, data=None)`` method,
    given the first argument the client sent (or None) whatever else it sent;
    events without such a method are ignored (``trigger_event``).
    """

    # python-socketio's own events, called with the arguments it chooses.
    LIFECYCLE_EVENTS = frozenset({"connect", "disconnect"})

    def __init__(self, live: TwinLive) -> None:
        super().__init__(NAMESPACE)
        self.live = live

    async def trigger_event(self, event: Any, *args: Any) -> Any:
        """Route an event to its handler with ``(sid, data)``, whatever a client sent.

        python-socketio's routing calls ``on_<event>(sid, *arguments)``: a client
        sending two arguments made a handler raise ``TypeError`` and log a
        traceback. Client events with reserved names never get here
        (``twin.live.transport.TwinPacket`` decodes them as malformed).
        """
        if event in self.LIFECYCLE_EVENTS:
            return await super().trigger_event(event, *args)
        sid, *arguments = args
        if event == MALFORMED_EVENT:
            logger.info("ignored a malformed packet from %s: %s", sid, arguments[0] if arguments else "")
            return None
        handler = getattr(self, f"on_{event}", None) if isinstance(event, str) else None
        if handler is None:
            return None
        return await handler(sid, arguments[0] if arguments else None)

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        """Admit readers only (unless ``TWIN_PUBLIC_READ``): an API token in the auth payload, or a session cookie.

        Django's middleware never sees Socket.IO traffic, so this is the check.
        Whatever the client sent, it gets an answer: a connection, or a
        ``connect_error`` (a handler that raised left the client waiting forever).
        The reader's credential is remembered, so that revoking it disconnects
        the connection and a changed permission moves it between audiences
        (``twin.live.guard``).
        """
        reader = await self._reader(environ, auth)
        if reader is None and not settings.TWIN_PUBLIC_READ:
            raise _refusal("not_authenticated", "Send {'token': '<API token>'} as the auth payload, or log in first.")
        side = self.live.ensure_started()
        await self.enter_room(sid, FULL_ROOM)
        # The events only some readers may receive: those whose REST permissions they hold (twin.audiences).
        rooms = reader_rooms(reader.permissions) if reader is not None else frozenset()
        for room in rooms:
            await self.enter_room(sid, room)
        if reader is not None and reader.credential is not None:
            side.guard.admit(sid, reader.credential, rooms)
        side.emitter.greet(sid)

    async def _reader(self, environ: dict[str, Any], auth: Any) -> Reader | None:
        """The reader behind the auth payload or the session cookie, or None; a refusal if they cannot be checked."""
        token = auth.get("token") if isinstance(auth, dict) else None
        session_key = session_key_from_cookie_header(str(environ.get("HTTP_COOKIE", "")))
        if not (token or session_key):
            return None
        try:
            return await db_call(reader_identify, token=token, session_key=session_key)
        except DATABASE_DOWN:
            logger.warning("database unavailable while admitting a live reader")
            raise _refusal("database_unavailable", "The database cannot be reached; retry later.") from None
        except Exception:
            logger.exception("could not identify a live reader")
            raise _refusal("server_error", "The server failed to check the credentials; the error is logged.") from None

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        side = self.live.ensure_started()
        side.emitter.forget(sid)
        side.guard.forget(sid)

    async def on_subscribe(self, sid: str, data: Any = None) -> dict[str, Any]:
        """``subscribe`` ``{"mode": "delta"}`` (``"fields": true`` for the keys that changed) or ``"full"``.

        Answered with the mode (and ``"fields": true`` when granted).
        """
        mode = data.get("mode") if isinstance(data, dict) else None
        fields = data.get("fields", False) if isinstance(data, dict) else False
        if mode not in ("delta", "full") or not isinstance(fields, bool):
            return {
                "error": "bad_mode",
                "detail": "Subscribe with {'mode': 'delta'}, {'mode': 'delta', 'fields': true} or {'mode': 'full'}.",
            }
        return await self.live.ensure_started().emitter.subscribe(sid, mode, fields=fields)

    async def on_resync(self, sid: str, data: Any = None) -> dict[str, Any]:
        """A delta client that missed a version asks for the full state again (in the delta form it chose)."""
        return await self.live.ensure_started().emitter.resync(sid)
