"""The measurement history's background jobs (run exactly once across processes by the ``jobs`` app)."""

from __future__ import annotations

from datetime import datetime

from jobs.registry import job
from metrics.retention import history_partitions_ensure, history_prune, raw_cutoff
from metrics.rollups import HOSTS, SERIES, rollups_update


@job(name="metrics.rollups", every_seconds=60.0)
def metrics_rollups(now: datetime) -> str:
    """Fold the samples and labelled values that arrived since the last run into the 5-minute and hourly rollups."""
    cutoff = raw_cutoff(now=now)
    hosts = rollups_update(now=now, stamped_from=cutoff, history=HOSTS)
    series = rollups_update(now=now, stamped_from=cutoff, history=SERIES)
    return f"{hosts}; labelled series: {series}"


@job(name="metrics.partitions", every_seconds=3600.0)
def metrics_partitions(now: datetime) -> str:
    """Keep the daily partitions of raw samples ready a few days ahead (PostgreSQL; nothing to do on SQLite)."""
    created = history_partitions_ensure(now=now)
    return f"created {', '.join(created)}" if created else "all days ahead exist"


@job(name="metrics.prune", every_seconds=600.0)
def metrics_prune(now: datetime) -> str:
    """Enforce the retention of raw samples, rollups and batch receipts."""
    return history_prune(now=now).sentence()
