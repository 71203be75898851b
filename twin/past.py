"""What apps above the twin add to it at a past time: ``GET /api/twin/state?at=`` gains one key per addition.

The twin may not import the apps that watch it (the layer contract), yet the
time slider must show what fired then beside the hosts. So an app above
registers, once, at its start (``AppConfig.ready``), a plain read of its own
facts at a time under a key of its own; the view adds each key to the past
document. A key is added, never replaced: the seed's keys stay as they are.
Only the past document has them; the live one and its pushes keep their shape.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

PastRead = Callable[[datetime], Any]
_READS: dict[str, PastRead] = {}
# The document's own keys: an addition may not take one.
_OWN_KEYS = frozenset({"type", "twinId", "generatedAt", "hosts", "links"})


def past_read_register(key: str, read: PastRead) -> None:
    """Add ``key`` (``read(at)``'s answer) to every past twin-state document; refuse a key that is taken."""
    if key in _OWN_KEYS or (key in _READS and _READS[key] is not read):
        raise ValueError(f"the twin-state key {key!r} is taken")
    _READS[key] = read


def past_additions(*, at: datetime) -> dict[str, Any]:
    """Every registered addition at ``at``, by key."""
    return {key: read(at) for key, read in _READS.items()}
