"""jobs.services: each due run happens exactly once, whichever runner claims it; failures are kept."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import close_old_connections, connection
from django.utils import timezone

from jobs.models import Job
from jobs.registry import JOBS, job
from jobs.selectors import jobs_health
from jobs.services import job_claim, jobs_due, jobs_ensure, jobs_run_due

EVERY = 60.0


@pytest.fixture
def ledger():
    """A registered job that counts its runs, and one that always fails; both removed afterwards."""
    runs: Counter[datetime] = Counter()
    lock = threading.Lock()

    @job(name="tests.count", every_seconds=EVERY)
    def count(now: datetime) -> str:
        with lock:
            runs[now] += 1
        return "counted"

    @job(name="tests.fail", every_seconds=EVERY)
    def fail(now: datetime) -> str:
        raise RuntimeError("the disk is full")

    yield runs
    JOBS.pop("tests.count")
    JOBS.pop("tests.fail")


def _tests_jobs(runs) -> list[str]:
    """The runs of this module's jobs (the apps' own jobs run beside them)."""
    return [r.name for r in runs if r.name.startswith("tests.")]


@pytest.mark.django_db
def test_a_due_job_runs_once_and_is_due_again_one_period_later(ledger):
    now = timezone.now()
    jobs_ensure(now=now)
    assert {r.name for r in jobs_run_due(now=now)} >= {"tests.count"}
    assert _tests_jobs(jobs_run_due(now=now + timedelta(seconds=EVERY - 1))) == []
    assert [n for n in _tests_jobs(jobs_run_due(now=now + timedelta(seconds=EVERY))) if n == "tests.count"] == [
        "tests.count"
    ]
    assert sum(ledger.values()) == 2
    assert Job.objects.get(name="tests.count").runs == 2


@pytest.mark.django_db
def test_a_failing_job_is_recorded_and_does_not_stop_the_others(ledger):
    now = timezone.now()
    jobs_ensure(now=now)
    runs = {r.name: r for r in jobs_run_due(now=now)}
    assert runs["tests.count"].ok and not runs["tests.fail"].ok
    failed = Job.objects.get(name="tests.fail")
    assert failed.last_ok is False and "the disk is full" in failed.last_error and failed.failures == 1
    assert failed.lease_until is None


@pytest.mark.django_db
def test_a_lease_left_by_a_dead_process_is_taken_over_once_it_expires(ledger):
    now = timezone.now()
    jobs_ensure(now=now)
    spec = JOBS["tests.count"]
    assert job_claim(spec=spec, now=now, owner="died-mid-run")
    assert not job_claim(spec=spec, now=now + timedelta(seconds=spec.lease_seconds - 1), owner="other")
    assert job_claim(spec=spec, now=now + timedelta(seconds=spec.lease_seconds + 1), owner="other")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_runners_racing_in_several_threads_run_each_due_job_exactly_once(ledger):
    start = timezone.now()
    jobs_ensure(now=start)
    ticks = [start + timedelta(seconds=EVERY * i) for i in range(5)]
    barrier = threading.Barrier(4)

    def runner(owner: str) -> None:
        try:
            for tick in ticks:
                barrier.wait()
                jobs_run_due(now=tick, owner=owner)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=runner, args=(f"runner-{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert dict(ledger) == dict.fromkeys(ticks, 1)


@pytest.mark.django_db
def test_a_job_overdue_by_several_periods_is_lagging(ledger):
    now = timezone.now()
    jobs_ensure(now=now)
    health = {h.name: h for h in jobs_health(now=now + timedelta(seconds=10))}
    assert not health["tests.count"].lagging
    health = {h.name: h for h in jobs_health(now=now + timedelta(seconds=4 * EVERY))}
    assert health["tests.count"].lagging and health["tests.count"].lag_seconds == pytest.approx(4 * EVERY, abs=1)


@pytest.mark.django_db
def test_an_operator_can_run_one_job_now_from_the_command_line(ledger, capsys):
    now = timezone.now()
    jobs_ensure(now=now)
    jobs_run_due(now=now)  # now it is not due for a period
    call_command("run_jobs", "--job", "tests.count")
    assert sum(ledger.values()) == 2
    assert "tests.count: ok" in capsys.readouterr().out


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_job_that_loses_a_lock_race_is_recorded_and_warned_of_without_a_traceback(caplog):
    """A job blocked by another transaction's lock (as by a partition being dropped) is no crash."""
    if connection.vendor != "postgresql":
        pytest.skip("lock timeouts are PostgreSQL's")
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE tests_lock_probe (id integer)")
    holder_took = threading.Event()
    release = threading.Event()

    def hold_the_table() -> None:
        with connection.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("LOCK TABLE tests_lock_probe IN ACCESS EXCLUSIVE MODE")
            holder_took.set()
            release.wait(5)
            cursor.execute("ROLLBACK")
        close_old_connections()
        connection.close()

    @job(name="tests.blocked", every_seconds=EVERY)
    def blocked(now: datetime) -> str:
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '50ms'")
            try:
                cursor.execute("SELECT count(*) FROM tests_lock_probe")
            finally:
                cursor.execute("SET lock_timeout = 0")
        return "read"

    holder = threading.Thread(target=hold_the_table)
    holder.start()
    try:
        assert holder_took.wait(5)
        now = timezone.now()
        jobs_ensure(now=now)
        runs = [r for r in jobs_run_due(now=now) if r.name == "tests.blocked"]
    finally:
        release.set()
        holder.join()
        JOBS.pop("tests.blocked")
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE tests_lock_probe")
    assert [r.ok for r in runs] == [False]
    assert "lock timeout" in Job.objects.get(name="tests.blocked").last_error
    warned = [r for r in caplog.records if r.name == "jobs.services" and "tests.blocked" in r.getMessage()]
    assert [(r.levelname, r.exc_info) for r in warned] == [("WARNING", None)]


@pytest.mark.django_db
def test_a_lease_held_by_a_process_of_this_machine_that_no_longer_runs_is_taken_at_once(ledger, caplog):
    import subprocess
    import sys

    from common.processes import HOSTNAME

    killed = subprocess.Popen([sys.executable, "-c", "pass"])
    killed.wait()
    now = timezone.now()
    jobs_ensure(now=now)
    spec = JOBS["tests.count"]
    assert job_claim(spec=spec, now=now, owner=f"{HOSTNAME}:{killed.pid}")
    # Killed mid-run: no expiry to wait for. The job is due to the runners, and of two claimants, one takes it.
    assert "tests.count" in jobs_due(now=now + timedelta(seconds=1))
    assert job_claim(spec=spec, now=now + timedelta(seconds=1), owner="survivor")
    assert not job_claim(spec=spec, now=now + timedelta(seconds=1), owner="another")
    assert Job.objects.get(name="tests.count").lease_owner == "survivor"
    assert f"took over the lease of {HOSTNAME}:{killed.pid}" in caplog.text


@pytest.mark.django_db
def test_a_lease_held_by_a_running_process_or_another_machines_waits_for_its_expiry(ledger):
    import os

    from common.processes import HOSTNAME

    now = timezone.now()
    jobs_ensure(now=now)
    spec = JOBS["tests.count"]
    for holder in (f"{HOSTNAME}:{os.getppid()}", f"{HOSTNAME}:{os.getpid()}", "elsewhere:12345", "no-pid"):
        Job.objects.filter(name=spec.name).update(lease_owner=holder, lease_until=now + timedelta(seconds=60))
        assert not job_claim(spec=spec, now=now + timedelta(seconds=1), owner="other"), holder
        assert "tests.count" not in jobs_due(now=now + timedelta(seconds=1)), holder
