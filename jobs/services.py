"""Running background jobs exactly once per period, whichever of several processes gets there first."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from common.errors import database_trouble
from common.processes import HOSTNAME, owner_gone
from jobs.models import Job
from jobs.registry import JOBS, JobSpec

logger = logging.getLogger(__name__)

# Who holds a lease: enough for an operator to find the process.
OWNER = f"{HOSTNAME}:{os.getpid()}"


@dataclass(frozen=True)
class JobRun:
    """One run of a job: whether it worked, and what it said."""

    name: str
    ok: bool
    result: str
    duration_ms: float


def jobs_ensure(*, now: datetime) -> None:
    """Give every registered job its row (due at once), and keep each row's period current."""
    Job.objects.bulk_create(
        [Job(name=spec.name, every_seconds=spec.every_seconds, next_run_at=now) for spec in JOBS.values()],
        ignore_conflicts=True,
    )
    for spec in JOBS.values():
        Job.objects.filter(name=spec.name).exclude(every_seconds=spec.every_seconds).update(
            every_seconds=spec.every_seconds
        )


def job_claim(*, spec: JobSpec, now: datetime, owner: str = OWNER) -> bool:
    """Take the job's lease if it is due and free; True for exactly one claimant.

    One conditional UPDATE: on PostgreSQL a concurrent claimant waits for the
    row lock, then re-reads the row, finds the lease taken and updates nothing;
    SQLite runs writers one at a time. No separate lock service is needed, and
    it works the same in ``make run`` and behind a load balancer.

    A lease is free once it expires, or at once when its holder is a process of
    this machine that no longer runs (killed mid-run, it never released it): the
    one-second jobs (host statuses, command deadlines) would otherwise stop for
    the whole deployment until the lease ran out, a minute at least.
    """
    grant = {"lease_owner": owner, "lease_until": now + timedelta(seconds=spec.lease_seconds), "last_started_at": now}
    due = Q(name=spec.name, next_run_at__lte=now)
    if Job.objects.filter(due & (Q(lease_until__isnull=True) | Q(lease_until__lt=now))).update(**grant):
        return True
    holder = Job.objects.filter(due, lease_until__gte=now).values_list("lease_owner", flat=True).first()
    # Conditioned on the same holder: of several claimants finding it gone, one takes the lease.
    if holder and owner_gone(holder) and Job.objects.filter(due, lease_owner=holder).update(**grant):
        logger.warning("job %s: took over the lease of %s, which no longer runs", spec.name, holder)
        return True
    return False


def job_run(*, spec: JobSpec, now: datetime) -> JobRun:
    """Run a claimed job, record how it went, release its lease and schedule its next run."""
    started = time.perf_counter()
    try:
        result, ok, error = spec.fn(now) or "", True, ""
    except Exception as exc:
        if database_trouble(exc):
            # Lost a race with another transaction (a partition dropped, a
            # migration) or the database went away (a restart): nothing is
            # wrong with the job, so no traceback.
            logger.warning(
                "job %s met a database conflict or outage and runs again at its next period: %s", spec.name, exc
            )
        else:
            # A failing job must not stop the others, nor take the process down:
            # it is recorded (admin, readiness) and retried at its next period.
            logger.exception("job %s failed", spec.name)
        result, ok, error = "", False, f"{type(exc).__name__}: {exc}"
    duration_ms = (time.perf_counter() - started) * 1000
    finished = timezone.now()
    Job.objects.filter(name=spec.name).update(
        next_run_at=now + timedelta(seconds=spec.every_seconds),
        lease_owner="",
        lease_until=None,
        last_finished_at=finished,
        last_duration_ms=duration_ms,
        last_ok=ok,
        last_result=result[:2000],
        last_error=error[:2000],
        runs=F("runs") + 1,
        failures=F("failures") + (0 if ok else 1),
    )
    return JobRun(name=spec.name, ok=ok, result=result, duration_ms=duration_ms)


def jobs_due(*, now: datetime) -> list[str]:
    """The registered jobs due now and free, or held by a process gone (one query: an idle tick costs little)."""
    rows = Job.objects.filter(next_run_at__lte=now).values_list("name", "lease_owner", "lease_until")
    return [
        name
        for name, holder, until in rows
        if name in JOBS and (until is None or until < now or (holder and owner_gone(holder)))
    ]


def jobs_run_due(*, now: datetime | None = None, owner: str = OWNER) -> list[JobRun]:
    """Run every job that is due and that this process manages to claim."""
    now = now or timezone.now()
    runs = []
    for name in jobs_due(now=now):
        spec = JOBS[name]
        if job_claim(spec=spec, now=now, owner=owner):
            runs.append(job_run(spec=spec, now=now))
    return runs


def job_run_now(*, name: str, owner: str = OWNER) -> JobRun | None:
    """Run a job at once (an operator's command), still exactly once: None if another process holds it."""
    spec = JOBS[name]
    now = timezone.now()
    with transaction.atomic():
        Job.objects.filter(name=name, next_run_at__gt=now).update(next_run_at=now)
    if not job_claim(spec=spec, now=now, owner=owner):
        return None
    return job_run(spec=spec, now=now)
