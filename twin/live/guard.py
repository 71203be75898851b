"""The guard: revocation reaches live connections.

A reader is checked once, when its Socket.IO connection opens; the connection
then lives for hours. Every ``TWIN_READER_RECHECK_SECONDS`` (5 s by default)
the guard checks again every reader connected to this process, all at once
(``twin.readers.readers_recheck``, three queries whatever their number), and
disconnects those no longer allowed: the user was deactivated, the token
deleted, the session ended by a logout or by a password change. A reader
whose permissions changed (granted or revoked, to the user or to a group)
enters or leaves the rooms of the events those permissions read
(``twin.audiences``). Connections admitted without credentials
(``TWIN_PUBLIC_READ``) have nothing to revoke, and only the events every
reader may receive.
"""

from __future__ import annotations

import asyncio
import logging

import socketio
from django.utils import timezone

from common.asyncsync import db_call
from common.errors import database_trouble
from twin.audiences import reader_rooms
from twin.live.emitter import NAMESPACE
from twin.readers import ReaderCredential, readers_recheck

logger = logging.getLogger(__name__)


class ReaderGuard:
    """The credentials of this process's live readers, and the loop that checks them again."""

    def __init__(self, server: socketio.AsyncServer, *, interval: float) -> None:
        self.server = server
        self.interval = interval
        self._readers: dict[str, ReaderCredential] = {}
        self._rooms: dict[str, frozenset[str]] = {}

    def admit(self, sid: str, credential: ReaderCredential, rooms: frozenset[str] = frozenset()) -> None:
        """Remember what ``sid`` was admitted with, and the audience rooms it entered."""
        self._readers[sid] = credential
        self._rooms[sid] = rooms

    def forget(self, sid: str) -> None:
        """``sid`` left."""
        self._readers.pop(sid, None)
        self._rooms.pop(sid, None)

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
                    exc_info=not database_trouble(exc),
                )

    async def check(self) -> list[str]:
        """Disconnect the readers whose credentials no longer hold (their sids are returned); move the others
        into the audience rooms their permissions give now, and out of the others."""
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
            else:
                await self._rooms_follow(sid, reader_rooms(reader.permissions))
        if revoked:
            logger.info("disconnected %d live reader(s) whose credentials were revoked", len(revoked))
        return revoked

    async def _rooms_follow(self, sid: str, rooms: frozenset[str]) -> None:
        before = self._rooms.get(sid, frozenset())
        if sid not in self._readers or rooms == before:
            return  # gone meanwhile, or nothing changed
        for room in before - rooms:
            await self.server.leave_room(sid, room, namespace=NAMESPACE)
        for room in rooms - before:
            await self.server.enter_room(sid, room, namespace=NAMESPACE)
        self._rooms[sid] = rooms
