"""The state of each background job, shared by every process that may run it."""

from __future__ import annotations

from django.db import models


class Job(models.Model):
    """One registered job: when it runs next, who holds it now, and how its last run went.

    A process runs a job only after claiming it (``jobs.services.job_claim``):
    one conditional UPDATE that succeeds for exactly one process while the job
    is due and nobody holds its lease. The lease expires on its own, so a
    process that dies mid-run delays the job by the lease, not forever.
    """

    name = models.CharField(max_length=100, unique=True)
    every_seconds = models.FloatField(help_text="How often it runs.")
    next_run_at = models.DateTimeField(help_text="It runs at the first tick after this time.")
    lease_owner = models.CharField(max_length=100, blank=True, help_text="The process running it now.")
    lease_until = models.DateTimeField(null=True, blank=True, help_text="Another process may take it after this.")
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_finished_at = models.DateTimeField(null=True, blank=True)
    last_duration_ms = models.FloatField(null=True, blank=True)
    last_ok = models.BooleanField(null=True, blank=True, help_text="Empty until it has run once.")
    last_result = models.TextField(blank=True, help_text="What the last run did, in a sentence.")
    last_error = models.TextField(blank=True)
    runs = models.PositiveBigIntegerField(default=0)
    failures = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
