"""How the background jobs are doing: for the admin and the readiness check."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from jobs.models import Job
from jobs.registry import JOBS

# A job is lagging once it is overdue by this many of its periods (and at
# least LAG_MIN_SECONDS): one slow run is not an alarm, a stopped runner is.
LAG_PERIODS = 3
LAG_MIN_SECONDS = 30.0


@dataclass(frozen=True)
class JobHealth:
    """A job's lag behind its schedule and how its last run went."""

    name: str
    every_seconds: float
    lag_seconds: float
    lagging: bool
    last_ok: bool | None
    last_finished_at: datetime | None
    last_result: str
    last_error: str


def job_lag_seconds(*, job: Job, now: datetime) -> float:
    """How long a job has been due without running (0 when it is not due yet)."""
    return max(0.0, (now - job.next_run_at).total_seconds())


def jobs_health(*, now: datetime) -> list[JobHealth]:
    """Every registered job's health (a job whose row no runner has created yet has not run, and does not lag)."""
    rows = {job.name: job for job in Job.objects.filter(name__in=list(JOBS))}
    health = []
    for name, spec in sorted(JOBS.items()):
        job = rows.get(name)
        if job is None:
            health.append(JobHealth(name, spec.every_seconds, 0.0, False, None, None, "not run yet", ""))
            continue
        lag = job_lag_seconds(job=job, now=now)
        limit = max(LAG_MIN_SECONDS, LAG_PERIODS * spec.every_seconds)
        health.append(
            JobHealth(
                name=name,
                every_seconds=spec.every_seconds,
                lag_seconds=lag,
                lagging=lag > limit,
                last_ok=job.last_ok,
                last_finished_at=job.last_finished_at,
                last_result=job.last_result,
                last_error=job.last_error,
            )
        )
    return health
