"""Silences and maintenance windows: which alerts are recorded but not notified right now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.models import Alert, MaintenanceWindow, Silence

WEEK = timedelta(days=7)


def window_active(*, starts_at: datetime, ends_at: datetime, weekly: bool, now: datetime) -> bool:
    """Whether a window covers ``now``: once, or every week from its start for the same length."""
    if now < starts_at:
        return False
    if not weekly:
        return now < ends_at
    return (now - starts_at) % WEEK < (ends_at - starts_at)


def matchers_match(matchers: list[dict[str, str]], labels: dict[str, str]) -> bool:
    """Every matcher (``{"name", "value"}``) equals the alert's label of that name; no matcher matches nothing."""
    return bool(matchers) and all(labels.get(m.get("name", "")) == m.get("value") for m in matchers)


@dataclass(frozen=True)
class Suppressions:
    """The silences and maintenance windows in force at one instant."""

    silences: tuple[list[dict[str, str]], ...]
    hosts: frozenset[int]
    racks: frozenset[str]

    @classmethod
    def active(cls, *, now: datetime) -> Suppressions:
        silences = tuple(
            s.matchers
            for s in Silence.objects.filter(starts_at__lte=now, ends_at__gt=now)
            if isinstance(s.matchers, list)
        )
        hosts: set[int] = set()
        racks: set[str] = set()
        for window in MaintenanceWindow.objects.filter(starts_at__lte=now).prefetch_related("hosts", "racks"):
            if window_active(starts_at=window.starts_at, ends_at=window.ends_at, weekly=window.weekly, now=now):
                hosts.update(h.pk for h in window.hosts.all())
                racks.update(r.name for r in window.racks.all())
        return cls(silences=silences, hosts=frozenset(hosts), racks=frozenset(racks))

    def covers(self, alert: Alert) -> bool:
        """Whether the alert is silenced or its host (or its host's rack) is in maintenance."""
        if alert.host_id in self.hosts or (alert.labels.get("rack") and alert.labels["rack"] in self.racks):
            return True
        return any(matchers_match(m, alert.labels) for m in self.silences)
