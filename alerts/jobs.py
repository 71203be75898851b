"""The background jobs of alerts (run exactly once across processes by the ``jobs`` app)."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings

from alerts.evaluation import alerts_evaluate
from jobs.registry import job


@job(name="alerts.evaluate", every_seconds=settings.TWIN_ALERTS_EVALUATE_SECONDS)
def alerts_evaluate_job(now: datetime) -> str:
    """Evaluate every rule over the latest values and the clock; record each transition once."""
    return f"{len(alerts_evaluate(now=now))} alert transition(s)"
