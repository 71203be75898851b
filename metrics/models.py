"""Metric history and the latest values per host."""

from __future__ import annotations

from django.db import models

from hosts.models import Host, Interface
from metrics.fields import COUNTERS, metric_columns, rollup_columns, series_rollup_columns


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
    """One accepted metric sample: the raw history of a host.

    ``timestamp`` is the agent's clock, ``received_at`` the server's. A host
    has at most one sample per timestamp (the primary key), which is what
    makes a retried batch store nothing twice. On PostgreSQL the table is
    partitioned by day of ``timestamp`` (``metrics.retention``): old days are
    dropped whole. The key is (host, timestamp) rather than a surrogate id:
    a partitioned table's unique keys must hold the partition key, and one
    index fewer makes every insert cheaper.
    """

    pk = models.CompositePrimaryKey("host_id", "timestamp")
    # The primary key's first column serves the host's lookups: no index of its own.
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="samples", db_index=False)
    timestamp = models.DateTimeField()
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["-timestamp"]
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


# The rollup columns of every metric (metrics/fields.py), in both levels alike.
RollupValues = _abstract_model("RollupValues", rollup_columns())


class Rollup(RollupValues):
    """A host's samples in one bucket of time, summarised (metrics/rollups.py).

    ``first_at`` and ``last_at`` are the times of the bucket's first and last
    samples: with the first and last counter readings they give the rate
    across the boundary between two buckets, so rates stay reset-safe at any
    resolution.
    """

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="+", db_index=False)
    bucket = models.DateTimeField(help_text="The bucket's start.")
    samples = models.PositiveIntegerField(help_text="Samples summarised.")
    first_at = models.DateTimeField()
    last_at = models.DateTimeField()

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.host_id}@{self.bucket.isoformat()}"


class Rollup5m(Rollup):
    """Five-minute rollups, kept ``TWIN_ROLLUP_RETENTION_DAYS``."""

    pk = models.CompositePrimaryKey("host_id", "bucket")

    class Meta:
        indexes = [models.Index(fields=["bucket"], name="rollup5m_bucket")]


class Rollup1h(Rollup):
    """Hourly rollups, kept ``TWIN_HOURLY_RETENTION_DAYS``."""

    pk = models.CompositePrimaryKey("host_id", "bucket")

    class Meta:
        indexes = [models.Index(fields=["bucket"], name="rollup1h_bucket")]


class RollupProgress(models.Model):
    """How far the rollups have read the raw samples, by the time the server received them.

    One row. The rollup job reads the samples received since (with an overlap
    for batches that committed late), and the series API serves rollups up to
    about this time and raw samples after it.
    """

    name = models.CharField(max_length=40, primary_key=True)
    received_until = models.DateTimeField()

    class Meta:
        verbose_name_plural = "rollup progress"

    def __str__(self) -> str:
        return f"{self.name} until {self.received_until.isoformat()}"


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


class InterfaceCounters(models.Model):
    """An interface's last two counter readings and the throughput between them (reset-safe).

    Kept like a host's latest values (``LatestMetrics``): moved forward at
    ingest, never backwards, so a snapshot reads one number per interface.
    A link that names the interface takes its traffic from here.
    """

    interface = models.OneToOneField(Interface, on_delete=models.CASCADE, primary_key=True, related_name="counters")
    sample_time = models.DateTimeField()
    rx_bytes = models.BigIntegerField()
    tx_bytes = models.BigIntegerField()
    prev_sample_time = models.DateTimeField(null=True, blank=True)
    prev_rx_bytes = models.BigIntegerField(null=True, blank=True)
    prev_tx_bytes = models.BigIntegerField(null=True, blank=True)
    throughput_gbps = models.FloatField(
        null=True, blank=True, help_text="Between the last two readings; empty when a counter went down."
    )

    class Meta:
        verbose_name_plural = "interface counters"

    def __str__(self) -> str:
        return f"counters of {self.interface_id}"


class SeriesKind(models.TextChoices):
    """What a labelled series' values are: a reading (``gauge``) or a running total (``counter``)."""

    GAUGE = "gauge", "gauge"
    COUNTER = "counter", "counter"


class Series(models.Model):
    """A labelled metric of a host: a name and its labels (``disk_used_percent{mount="/"}``).

    ``labels`` is the canonical label set (keys sorted); ``key`` a digest of
    the name and that set, so uniqueness is one short index whatever the
    labels' length. ``kind`` and ``unit`` are fixed by the series' first
    report (metrics/series.py). How many a host may have, and how many all
    hosts together, is bounded (``TWIN_SERIES_MAX_PER_HOST``,
    ``TWIN_SERIES_MAX_TOTAL``).
    """

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="series", db_index=False)
    name = models.CharField(max_length=200)
    labels = models.JSONField(default=dict)
    key = models.CharField(max_length=32, help_text="blake2b-128 of the name and canonical labels, hex.")
    kind = models.CharField(max_length=8, choices=SeriesKind.choices, default=SeriesKind.GAUGE)
    unit = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "series"
        constraints = [models.UniqueConstraint(fields=["host", "key"], name="series_once_per_host")]
        indexes = [models.Index(fields=["host", "name"], name="series_host_name")]

    def __str__(self) -> str:
        return f"{self.host_id}:{self.name}{self.labels}"


class SeriesSample(models.Model):
    """One value of a labelled series: its raw history, kept and partitioned as ``Sample`` is.

    Keyed by (series, timestamp) for the same reasons as ``Sample``; on
    PostgreSQL partitioned by day of ``timestamp`` by the same code
    (``metrics.retention``), so both histories age out alike.
    """

    pk = models.CompositePrimaryKey("series_id", "timestamp")
    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="samples", db_index=False)
    timestamp = models.DateTimeField()
    received_at = models.DateTimeField()
    value = models.FloatField()

    class Meta:
        ordering = ["-timestamp"]
        indexes = [models.Index(fields=["received_at"], name="series_sample_received_at")]

    def __str__(self) -> str:
        return f"{self.series_id}@{self.timestamp.isoformat()}"


class SeriesCount(models.Model):
    """How many labelled series a host has: the cardinality limits' counter, never a COUNT(*) per batch.

    Updated in the transaction that creates series, under the host's row lock
    (``hosts_lock_or_create``), so it is exact per host; the total is the sum
    of these rows, read only when a batch brings new series.
    """

    host = models.OneToOneField(Host, on_delete=models.CASCADE, primary_key=True, related_name="series_count")
    series = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.host_id}: {self.series} series"


# A labelled series' rollup columns (metrics/fields.py), in both levels alike.
SeriesRollupValues = _abstract_model("SeriesRollupValues", series_rollup_columns())


class SeriesRollup(SeriesRollupValues):
    """A labelled series' values in one bucket of time, summarised by the same algebra as ``Rollup``."""

    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="+", db_index=False)
    bucket = models.DateTimeField(help_text="The bucket's start.")
    samples = models.PositiveIntegerField(help_text="Values summarised.")
    first_at = models.DateTimeField()
    last_at = models.DateTimeField()

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.series_id}@{self.bucket.isoformat()}"


class SeriesRollup5m(SeriesRollup):
    """Five-minute rollups of labelled series, kept ``TWIN_ROLLUP_RETENTION_DAYS``."""

    pk = models.CompositePrimaryKey("series_id", "bucket")

    class Meta:
        indexes = [models.Index(fields=["bucket"], name="series_rollup5m_bucket")]


class SeriesRollup1h(SeriesRollup):
    """Hourly rollups of labelled series, kept ``TWIN_HOURLY_RETENTION_DAYS``."""

    pk = models.CompositePrimaryKey("series_id", "bucket")

    class Meta:
        indexes = [models.Index(fields=["bucket"], name="series_rollup1h_bucket")]
