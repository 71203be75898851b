"""Background jobs in the admin: when each last ran, how it went, and whether it lags."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from jobs.models import Job
from jobs.registry import JOBS
from jobs.selectors import job_lag_seconds
from jobs.services import job_run_now


def job_duration_text(milliseconds: float | None) -> str:
    """A run's duration as an operator reads it: "1.7 ms", "250 ms", "3.2 s"."""
    if milliseconds is None:
        return "-"
    if milliseconds < 10:
        return f"{milliseconds:.1f} ms"
    if milliseconds < 1000:
        return f"{milliseconds:.0f} ms"
    return f"{milliseconds / 1000:.1f} s"


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    """Read-only but for "run now": the schedule belongs to the code, the runs to the runners."""

    list_display = [
        "name",
        "every_seconds",
        "last_ok",
        "last_finished_at",
        "duration",
        "lag",
        "last_result",
        "last_error",
        "runs",
        "failures",
        "lease_owner",
    ]
    list_filter = ["last_ok"]
    # The raw float (1.7087209998862818) is shown as "1.7 ms" in its place.
    readonly_fields = [f.name if f.name != "last_duration_ms" else "duration" for f in Job._meta.fields]
    fields = readonly_fields
    actions = ["run_now"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="last duration", ordering="last_duration_ms")
    def duration(self, job: Job) -> str:
        return job_duration_text(job.last_duration_ms)

    @admin.display(description="lag (s)")
    def lag(self, job: Job) -> str:
        return f"{job_lag_seconds(job=job, now=timezone.now()):.0f}"

    @admin.action(description="Run the selected jobs now")
    def run_now(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        for job in queryset:
            if job.name not in JOBS:
                messages.warning(request, f"{job.name} is no longer registered.")
                continue
            run = job_run_now(name=job.name)
            if run is None:
                messages.warning(request, f"{job.name} is running in another process.")
            elif run.ok:
                messages.success(request, f"{job.name}: {run.result or 'done'}")
            else:
                messages.error(request, f"{job.name} failed; see its last error.")
