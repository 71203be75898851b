"""Metric history and the latest values per host."""

from __future__ import annotations

from django.db import models

from hosts.models import Host
from metrics.fields import COUNTERS, metric_columns


def _abstract_model(name: str, fields: dict[str, models.Field]) -> type[models.Model]:
    """An abstract model holding ``fields``: how registry-driven columns join a model."""
    attrs = {"__module__": __name__, "Meta": type("Meta", (), {"abstract": True}), **fields}
    return type(name, (models.Model,), attrs)


# One column per metric of the registry (metrics/fields.py), in the history and
# in the latest values alike.
MetricValues = _abstract_model("MetricValues", metric_columns())
# The previous reading of each counter, kept beside the latest values so a rate
# can be computed from the last two readings.
PreviousCounters = _abstract_model(
    "PreviousCounters", {f"prev_{f.name}": models.BigIntegerField(null=True, blank=True) for f in COUNTERS}
)


class Sample(MetricValues):
    """One accepted metric sample: the persistent history of a host.

    ``timestamp`` is the agent's clock, ``received_at`` the server's. A host
    has at most one sample per timestamp, which is what makes a retried batch
    store nothing twice.
    """

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="samples")
    timestamp = models.DateTimeField()
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["-timestamp"]
        constraints = [
            models.UniqueConstraint(fields=["host", "timestamp"], name="sample_one_per_host_and_time"),
        ]
        indexes = [models.Index(fields=["received_at"], name="sample_received_at")]

    def __str__(self) -> str:
        return f"{self.host_id}@{self.timestamp.isoformat()}"


class LatestMetrics(MetricValues, PreviousCounters):
    """What a host reported last, kept beside the history so a snapshot never scans it.

    ``sample_time`` only moves forward: a late, out-of-order sample joins the
    history but does not replace newer values here. The previous counter
    reading of each counter is kept, and the link throughput derived from the
    last two readings is stored when they change (at ingest), so a snapshot
    reads one number per host. ``last_seen`` is the server time of the last
    accepted sample of any age: the host is alive even when its clock or its
    queue is behind.
    """

    host = models.OneToOneField(Host, on_delete=models.CASCADE, primary_key=True, related_name="latest")
    last_seen = models.DateTimeField()
    sample_time = models.DateTimeField()
    prev_sample_time = models.DateTimeField(null=True, blank=True)
    # Derived once, when the readings above change, so a snapshot reads one
    # number instead of two timestamps and four counters per host.
    net_throughput_gbps = models.FloatField(
        null=True, blank=True, help_text="Between the last two readings; empty when a counter went down."
    )

    class Meta:
        verbose_name_plural = "latest metrics"

    def __str__(self) -> str:
        return f"latest of {self.host_id}"


class BatchReceipt(models.Model):
    """That a batch (reporter, agent session, sequence) was stored: a replay stores nothing.

    ``reporter`` is the hostname of the credential that signed the batch, or
    empty for an unsigned batch in open mode, so one agent cannot claim another
    agent's sequence numbers.
    """

    reporter = models.CharField(max_length=253, blank=True)
    agent_session = models.CharField(max_length=64)
    sequence = models.BigIntegerField()
    received_at = models.DateTimeField()
    accepted = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["reporter", "agent_session", "sequence"], name="receipt_once_per_sequence"),
        ]
        indexes = [models.Index(fields=["received_at"], name="receipt_received_at")]

    def __str__(self) -> str:
        return f"{self.reporter or '(open)'} {self.agent_session}#{self.sequence}"
