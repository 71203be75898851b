"""The background jobs of alerts (run exactly once across processes by the ``jobs`` app)."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings

from alerts.delivery import alerts_repost, notices_deliver
from alerts.evaluation import alerts_evaluate
from jobs.registry import job


@job(name="alerts.evaluate", every_seconds=settings.TWIN_ALERTS_EVALUATE_SECONDS)
def alerts_evaluate_job(now: datetime) -> str:
    """Evaluate every rule over the latest values and the clock; record each transition once."""
    return f"{len(alerts_evaluate(now=now))} alert transition(s)"


@job(name="alerts.deliver", every_seconds=settings.TWIN_ALERTS_DELIVER_SECONDS)
def alerts_deliver_job(now: datetime) -> str:
    """Send the queued notices (webhooks, Alertmanager), retrying those that failed."""
    run = notices_deliver(now=now)
    return f"{run.sent} sent, {run.retried} to retry, {run.failed} given up"


@job(name="alerts.repost", every_seconds=settings.TWIN_ALERTMANAGER_REPOST_SECONDS)
def alerts_repost_job(now: datetime) -> str:
    """Post the alerts still firing to each Alertmanager again, before their endsAt lapses."""
    return f"{alerts_repost(now=now)} re-post(s)"
