"""Reads of the twin's own data: a host's recorded status changes."""

from __future__ import annotations

from datetime import datetime

from twin.models import HostStatusEvent


def host_status_events(*, host_id: int, start: datetime | None, end: datetime, limit: int) -> list[HostStatusEvent]:
    """A host's newest ``limit`` status changes in [start, end), oldest first."""
    events = HostStatusEvent.objects.filter(host_id=host_id, at__lt=end)
    if start is not None:
        events = events.filter(at__gte=start)
    newest = list(events.order_by("-at", "-id")[:limit])
    return newest[::-1]
