"""The twin's own records: each host's status changes over time."""

from __future__ import annotations

from django.db import models

from hosts.models import Host
from twin.status import HostStatus

STATUS_CHOICES = [(s.value, s.value) for s in HostStatus]


class StatusCause(models.TextChoices):
    """Why a host's status changed."""

    DATA = "data", "a sample arrived"
    SILENCE = "silence", "the clock alone (no sample for too long)"
    INVENTORY = "inventory", "an inventory change (a new host, links rewired, thresholds changed)"


class HostStatusEvent(models.Model):
    """A host's status changed at ``at``: from what (empty for its first), to what, and why.

    Written by the status recorder (``twin.services``) only; each transition
    once, including those caused by the clock alone.
    """

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="status_events")
    at = models.DateTimeField()
    from_status = models.CharField(max_length=10, choices=STATUS_CHOICES, blank=True)
    to_status = models.CharField(max_length=10, choices=STATUS_CHOICES)
    cause = models.CharField(max_length=10, choices=StatusCause)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["host", "at"], name="status_event_host_at")]

    def __str__(self) -> str:
        return f"{self.host_id} {self.from_status or '-'}→{self.to_status} at {self.at.isoformat()}"


class HostStatusRecord(models.Model):
    """A host's status as last recorded: where its next transition starts.

    ``seen`` is the host's last contact when it was recorded: a later contact
    means data arrived since.
    """

    host = models.OneToOneField(Host, on_delete=models.CASCADE, primary_key=True, related_name="status_record")
    status = models.CharField(max_length=10, choices=STATUS_CHOICES)
    since = models.DateTimeField()
    seen = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.host_id} {self.status} since {self.since.isoformat()}"


class StatusCheck(models.Model):
    """When the status recorder last looked (one row): arrivals since then are read to time a host's return."""

    checked_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"checked at {self.checked_at.isoformat()}"
