"""The twin's background jobs (run exactly once across processes by the ``jobs`` app)."""

from __future__ import annotations

from datetime import datetime

from jobs.registry import job
from twin.services import status_events_prune, status_transitions_record


@job(name="twin.status_history", every_seconds=1.0)
def twin_status_history(now: datetime) -> str:
    """Record every host's status changes, those of the clock alone included, and announce them."""
    changes = status_transitions_record(now=now)
    return f"{len(changes)} status change(s)"


@job(name="twin.status_prune", every_seconds=86400.0)
def twin_status_prune(now: datetime) -> str:
    """Delete status changes older than the hourly rollups' retention."""
    return f"{status_events_prune(now=now)} status change(s) deleted"
