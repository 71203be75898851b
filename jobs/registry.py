"""The jobs this installation runs; apps register theirs when Django starts.

An app declares a job in its own ``jobs.py`` with the ``job`` decorator, and
its ``AppConfig.ready`` imports that module. The function takes the time the
run started and returns a sentence saying what it did (shown to operators).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

JobFunction = Callable[[datetime], str]


@dataclass(frozen=True)
class JobSpec:
    """A job: its name, how often it runs, how long one run may hold it, and what it does."""

    name: str
    every_seconds: float
    lease_seconds: float
    fn: JobFunction


JOBS: dict[str, JobSpec] = {}


def job(*, name: str, every_seconds: float, lease_seconds: float | None = None) -> Callable[[JobFunction], JobFunction]:
    """Register ``fn`` as the job ``name``, due every ``every_seconds``.

    ``lease_seconds`` (default: ten periods, at least 60 s) is how long a run
    may take before another process may assume it died and run it again.
    """

    def register(fn: JobFunction) -> JobFunction:
        lease = lease_seconds if lease_seconds is not None else max(60.0, 10 * every_seconds)
        JOBS[name] = JobSpec(name=name, every_seconds=every_seconds, lease_seconds=lease, fn=fn)
        return fn

    return register
