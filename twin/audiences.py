"""Who may receive each event on ``/digital-twin``: the readers who could read the same over REST.

One map, ``EVENT_PERMISSIONS``, names for each Socket.IO event the REST
permissions (any one of them) that read the same facts, by the same names the
REST views check. A reader holding one is put in the event's room when the
connection opens, and the guard (``twin.live.guard``) checks again every few
seconds, so a permission granted or revoked (to the user or to one of their
groups) starts or stops the events as it does the REST answers. Before, a
``command-update`` (shell output included) went to every staff reader, although
``GET /api/commands`` refused those without ``commands.view_command``.

Sync and free of Socket.IO: the live side asks it which rooms a reader belongs in.
"""

from __future__ import annotations

from collections.abc import Iterable

from commands.selectors import COMMAND_READ_PERMISSIONS

# Each event clients receive, with the REST permissions that read the same (any one suffices);
# () for what every reader reads (GET /api/twin/state, GET /api/hosts/{hostname}/events:
# twin.permissions.ReadAccess). An event missing here is sent to nobody (twin.live.dispatch).
EVENT_PERMISSIONS: dict[str, tuple[str, ...]] = {
    "twin-state": (),
    "twin-delta": (),
    "host-status": (),
    # GET /api/commands and GET /api/commands/{id}: commands.selectors.commands_readable_by.
    "command-update": COMMAND_READ_PERMISSIONS,
    # GET /api/alerts and /api/alerts/history: twin.permissions.ReadAccess, as the twin itself.
    "alert-update": (),
}
# Every permission name a live reader's rooms depend on.
LIVE_PERMISSIONS: frozenset[str] = frozenset(name for names in EVENT_PERMISSIONS.values() for name in names)
_ROOM_PREFIX = "may:"


class NoAudience(LookupError):
    """An event with no entry in ``EVENT_PERMISSIONS``: it is sent to nobody."""


def event_room(event: str) -> str | None:
    """The room of the readers who may receive ``event``; None when every reader may.

    Raises ``NoAudience`` for an event the map does not name.
    """
    if event not in EVENT_PERMISSIONS:
        raise NoAudience(event)
    return f"{_ROOM_PREFIX}{event}" if EVENT_PERMISSIONS[event] else None


def reader_rooms(permissions: Iterable[str]) -> frozenset[str]:
    """The rooms of the restricted events a reader holding ``permissions`` may receive."""
    held = set(permissions)
    return frozenset(
        f"{_ROOM_PREFIX}{event}" for event, needed in EVENT_PERMISSIONS.items() if needed and held.intersection(needed)
    )


def audience_rooms() -> frozenset[str]:
    """Every room ``reader_rooms`` can give."""
    return frozenset(f"{_ROOM_PREFIX}{event}" for event, needed in EVENT_PERMISSIONS.items() if needed)
