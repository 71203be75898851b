"""Collector tokens, and what the twin keeps of a Prometheus-fed host between two writes."""

from __future__ import annotations

from django.db import models


class CollectorToken(models.Model):
    """A bearer token a collector (a Prometheus) writes samples with; only its SHA-256 is stored.

    Scoped to writing samples (``POST /api/v1/write``): it reads nothing and
    registers no agent. Revoked, it is refused at once.
    """

    name = models.CharField(max_length=100, unique=True)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=16, editable=False, help_text="The token's first characters, to recognise it.")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class RemoteHostState(models.Model):
    """The newest value of each node_exporter series a host's samples are made of, by series.

    Prometheus splits one scrape over several requests (shards, ``max_samples_per_send``),
    and CPU load is a difference of counters between two scrapes: each write
    adds what it carries here (a retry changes nothing), and a sample is
    stored once a scrape's values give every field. Keyed by hostname, so it
    takes no host row lock before the ingest does.
    """

    hostname = models.CharField(max_length=253, unique=True)
    # {"<series key>": [timestamp_ms, value]} of the scrape being assembled.
    values = models.JSONField(default=dict)
    # The CPU counters and device count of the last scrape a sample was stored from.
    emitted = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.hostname
