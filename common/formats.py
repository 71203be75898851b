"""How times are written in every document the twin serves."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_utc(moment: datetime) -> str:
    """ISO-8601 in UTC with milliseconds and a ``Z``, as in the seed: ``2025-11-01T02:15:00.123Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
