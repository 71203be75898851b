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


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    """Read-only but for "run now": the schedule belongs to the code, the runs to the runners."""

    list_display = [
        "name",
        "every_seconds",
        "last_ok",
        "last_finished_at",
        "last_duration_ms",
        "lag",
        "last_result",
        "last_error",
        "runs",
        "failures",
        "lease_owner",
    ]
    list_filter = ["last_ok"]
    readonly_fields = [f.name for f in Job._meta.fields]
    actions = ["run_now"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

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
