"""The background jobs of alerts (run exactly once across processes by the ``jobs`` app)."""

from __future__ import annotations

import time
from datetime import datetime

from django.conf import settings

from alerts.delivery import alerts_repost, notices_deliver
from alerts.evaluation import alerts_evaluate, evaluation_cost_record
from alerts.selectors import evaluation_wait
from jobs.registry import job


@job(name="alerts.evaluate", every_seconds=settings.TWIN_ALERTS_EVALUATE_SECONDS)
def alerts_evaluate_job(now: datetime) -> str:
    """Evaluate every rule over the latest values and the clock; record each transition once.

    Within a CPU budget: a run that cost c seconds of CPU is followed by the next one no
    sooner than c / TWIN_ALERTS_CPU_SHARE, so a big fleet's evaluation never takes more than
    that share of a core from ingest (bench/results.md, "Alerts").
    """
    wait = evaluation_wait(now=now, share=settings.TWIN_ALERTS_CPU_SHARE)
    if wait > 0:
        return f"skipped: within the CPU budget, next in {wait:.1f} s"
    started = time.thread_time()
    changes = alerts_evaluate(now=now)
    cost = time.thread_time() - started
    evaluation_cost_record(cost_seconds=cost)
    return f"{len(changes)} alert transition(s), {cost * 1000:.0f} ms of CPU"


@job(name="alerts.deliver", every_seconds=settings.TWIN_ALERTS_DELIVER_SECONDS)
def alerts_deliver_job(now: datetime) -> str:
    """Send the queued notices (webhooks, Alertmanager), retrying those that failed."""
    run = notices_deliver(now=now)
    return f"{run.sent} sent, {run.retried} to retry, {run.failed} given up"


@job(name="alerts.repost", every_seconds=settings.TWIN_ALERTMANAGER_REPOST_SECONDS)
def alerts_repost_job(now: datetime) -> str:
    """Post the alerts still firing to each Alertmanager again, before their endsAt lapses."""
    return f"{alerts_repost(now=now)} re-post(s)"
