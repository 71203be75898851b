"""``manage.py prune_history``: enforce every retention of the history now (the jobs also do, on their own)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from metrics.retention import history_partitions_ensure, history_prune
from twin.services import status_events_prune


class Command(BaseCommand):
    help = (
        "Drop raw samples, rollups, batch receipts and status changes older than their retention "
        "(TWIN_RAW_RETENTION_DAYS, TWIN_ROLLUP_RETENTION_DAYS, TWIN_HOURLY_RETENTION_DAYS), and create "
        "the partitions of the days ahead. Safe while agents post and beside running servers."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        created = history_partitions_ensure(now=now)
        if created:
            self.stdout.write(f"Created partitions: {', '.join(created)}.")
        report = history_prune(now=now)
        self.stdout.write(f"Measurements: {report.sentence()}.")
        self.stdout.write(f"Status changes: {status_events_prune(now=now)} deleted.")
