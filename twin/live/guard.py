"""The guard: revocation reaches live connections.

A reader is checked once, when its Socket.IO connection opens; the connection
then lives for hours. Every ``TWIN_READER_RECHECK_SECONDS`` (5 s by default)
the guard checks again every reader connected to this process, all at once
(``twin.readers.readers_recheck``, three queries whatever their number), and
disconnects those no longer allowed: the user was deactivated, the token
deleted, the session ended by a logout or by a password change. A reader who
is no longer staff leaves the staff room. Connections admitted without
credentials (``TWIN_PUBLIC_READ``) have nothing to revoke.
"""

from __future__ import annotations

import asyncio
import logging

import socketio
from django.utils import timezone

from common.asyncsync import db_call
from common.errors import database_conflict
from twin.live.emitter import NAMESPACE, STAFF_ROOM
from twin.readers import ReaderCredential, readers_recheck

logger = logging.getLogger(__name__)


class ReaderGuard:
    """The credentials of this process's live readers, and the loop that checks them again."""

    def __init__(self, server: socketio.AsyncServer, *, interval: float) -> None:
        self.server = server
        self.interval = interval
        self._readers: dict[str, ReaderCredential] = {}

    def admit(self, sid: str, credential: ReaderCredential) -> None:
        """Remember what ``sid`` was admitted with."""
        self._readers[sid] = credential

    def forget(self, sid: str) -> None:
        """``sid`` left."""
        self._readers.pop(sid, None)

    async def run(self) -> None:
        """Check every ``interval`` seconds until cancelled; a failed check is retried at the next."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check()
            except Exception as exc:
                logger.warning(
                    "could not check live readers again; retrying in %g s: %s",
                    self.interval,
                    exc,
                    exc_info=not database_conflict(exc),
                )

    async def check(self) -> list[str]:
        """Disconnect the readers whose credentials no longer hold; return their sids."""
        readers = dict(self._readers)
        if not readers:
            return []
        valid = await db_call(readers_recheck, credentials=set(readers.values()), now=timezone.now())
        revoked = []
        for sid, credential in readers.items():
            reader = valid.get(credential)
            if reader is None:
                revoked.append(sid)
                self.forget(sid)
                await self.server.disconnect(sid, namespace=NAMESPACE)
            elif not reader.is_staff:
                await self.server.leave_room(sid, STAFF_ROOM, namespace=NAMESPACE)
        if revoked:
            logger.info("disconnected %d live reader(s) whose credentials were revoked", len(revoked))
        return revoked
