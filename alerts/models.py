"""Alert rules, the alerts they raise with each transition recorded once, and the delivery of their notices."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from alerts.conditions import Kind, Operator, Scope, Severity
from common.text import text_validate
from hosts.models import Host, Rack


class Rule(models.Model):
    """A condition over what the twin holds about each host (or, for a rack subject, each rack) in its scope.

    ``kind`` says what is looked at (``alerts.conditions``): a metric compared
    with ``threshold`` by ``operator``, the host's ``status``, or the absence
    of data for ``threshold`` seconds. An open alert stays open until the value
    passes ``clear_threshold`` (hysteresis; empty: the threshold itself). It
    fires once the condition has held ``for_seconds``. Validated by
    ``alerts.services.rule_check``, which the admin and the API both call.
    """

    name = models.CharField(max_length=100, unique=True, validators=[text_validate])
    enabled = models.BooleanField(default=True)
    kind = models.CharField(max_length=10, choices=[(k.value, k.value) for k in Kind], default=Kind.METRIC)
    field = models.CharField(max_length=64, blank=True, help_text="A metric rule's subject (alerts.conditions).")
    operator = models.CharField(max_length=2, choices=[(o.value, o.value) for o in Operator], blank=True)
    threshold = models.FloatField(null=True, blank=True, help_text="A metric's threshold; an absent rule's seconds.")
    clear_threshold = models.FloatField(
        null=True, blank=True, help_text="Where an open alert clears (hysteresis); empty: the threshold."
    )
    status = models.CharField(max_length=10, blank=True, help_text="A status rule's status (e.g. offline).")
    for_seconds = models.FloatField(default=0.0, help_text="How long the condition holds before the alert fires.")
    severity = models.CharField(max_length=10, choices=[(s.value, s.value) for s in Severity], default=Severity.WARNING)
    labels = models.JSONField(default=dict, blank=True, help_text="Extra labels: names and values, both text.")
    annotations = models.JSONField(default=dict, blank=True, help_text="summary, description, runbook_url, ...")
    scope = models.CharField(max_length=10, choices=[(s.value, s.value) for s in Scope], default=Scope.ALL)
    racks = models.ManyToManyField(Rack, blank=True, related_name="alert_rules")
    hosts = models.ManyToManyField(Host, blank=True, related_name="alert_rules")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AlertState(models.TextChoices):
    """An alert's lifecycle: pending while ``for`` runs, firing, then resolved."""

    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


OPEN_STATES = (AlertState.PENDING, AlertState.FIRING)


class Alert(models.Model):
    """One rule holding for one host, or for one rack, from the moment its condition held until it cleared.

    A host rule's alert names its ``host``; a rack rule's (``alerts.conditions.RACK_SUBJECTS``:
    the rack's power) names its ``rack`` and no host, since a rack's power problem is one
    incident, not one per host in it. Exactly one of the two is set (the database checks).

    ``starts_at`` is when the condition first held (pending), ``fired_at``
    when it fired, ``ends_at`` when it cleared. ``values`` are those that
    made it (the value and threshold, or the status and last contact);
    ``labels`` are fixed when it opens, so silences match what it was. At most
    one open alert per rule and host (or rack), enforced by the database. ``cause``: the
    alert of the failed switch that cut the host off, when there is one.
    """

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="alerts")
    host = models.ForeignKey(Host, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts")
    rack = models.ForeignKey(Rack, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts")
    state = models.CharField(max_length=10, choices=AlertState)
    starts_at = models.DateTimeField()
    fired_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    values = models.JSONField(default=dict)
    labels = models.JSONField(default=dict)
    # The root cause: the alert of the failed switch that cut this host off from the core (alerts.evaluation).
    # Its notices are inhibited: the cause's notice names the hosts it affects.
    cause = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="effects", db_index=True
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "host"], condition=Q(state__in=OPEN_STATES), name="alerts_one_open_per_rule_host"
            ),
            models.UniqueConstraint(
                fields=["rule", "rack"], condition=Q(state__in=OPEN_STATES), name="alerts_one_open_per_rule_rack"
            ),
            models.CheckConstraint(
                condition=Q(host__isnull=False, rack__isnull=True) | Q(host__isnull=True, rack__isnull=False),
                name="alerts_alert_host_or_rack",
            ),
        ]
        indexes = [
            models.Index(fields=["state"], name="alerts_alert_state"),
            models.Index(fields=["host", "starts_at"], name="alerts_alert_host_starts"),
            models.Index(fields=["starts_at"], name="alerts_alert_starts"),
        ]

    def __str__(self) -> str:
        subject = f"host {self.host_id}" if self.host_id is not None else f"rack {self.rack_id}"
        return f"{self.rule_id} on {subject}: {self.state}"


class AlertTransition(models.Model):
    """An alert entered ``to_state`` at ``at`` because of ``values``: recorded once (the database refuses twice)."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="transitions")
    from_state = models.CharField(max_length=10, choices=AlertState, blank=True)
    to_state = models.CharField(max_length=10, choices=AlertState)
    at = models.DateTimeField()
    values = models.JSONField(default=dict)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["alert", "to_state"], name="alerts_transition_once")]
        indexes = [models.Index(fields=["at"], name="alerts_transition_at")]

    def __str__(self) -> str:
        return f"{self.alert_id} -> {self.to_state} at {self.at.isoformat()}"


class Evaluation(models.Model):
    """The evaluator's one row: each run updates it first, so runs in several processes take turns."""

    evaluated_at = models.DateTimeField()
    # The CPU seconds the last run took: the next one waits until it fits TWIN_ALERTS_CPU_SHARE.
    cost_seconds = models.FloatField(default=0.0)

    def __str__(self) -> str:
        return f"evaluated at {self.evaluated_at.isoformat()}"


class ReceiverKind(models.TextChoices):
    """How notices reach a receiver."""

    WEBHOOK = "webhook", "webhook (Standard Webhooks signature)"
    ALERTMANAGER = "alertmanager", "Prometheus Alertmanager (API v2)"


class Receiver(models.Model):
    """Where notices go: a webhook URL (signed with ``secret`` when it has one) or an Alertmanager's base URL."""

    name = models.CharField(max_length=100, unique=True, validators=[text_validate])
    kind = models.CharField(max_length=12, choices=ReceiverKind, default=ReceiverKind.WEBHOOK)
    url = models.URLField(max_length=500)
    secret = models.CharField(
        max_length=200, blank=True, help_text="Signs webhooks (webhook-signature); whsec_<base64> or any text."
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class NotificationState(models.TextChoices):
    """Where a notice is in its delivery."""

    PENDING = "pending", "to send (or to retry)"
    SENT = "sent"
    FAILED = "failed", "gave up after every retry"
    SUPPRESSED = "suppressed", "silenced or in maintenance: recorded, not sent"
    INHIBITED = "inhibited", "caused by another alert, whose notice names it: recorded, not sent"


class Notification(models.Model):
    """The outbox: one notice of one transition (firing or resolved) to one receiver, sent once.

    Written in the evaluator's transaction; the sender (``alerts.delivery``)
    claims each with a conditional UPDATE, so one process sends it, and
    retries with backoff. Its id is the webhook's ``webhook-id``, so a
    receiver can drop a notice delivered twice (a sender that died between
    sending and recording it).
    """

    transition = models.ForeignKey(AlertTransition, on_delete=models.CASCADE, related_name="notifications")
    receiver = models.ForeignKey(Receiver, on_delete=models.CASCADE, related_name="notifications")
    state = models.CharField(max_length=10, choices=NotificationState, default=NotificationState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    claimed_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["transition", "receiver"], name="alerts_notice_once")]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="alerts_notice_due")]

    def __str__(self) -> str:
        return f"notice {self.pk} to {self.receiver_id}: {self.state}"


class Silence(models.Model):
    """Alerts matching every matcher between ``starts_at`` and ``ends_at`` are recorded but not notified.

    ``matchers``: a list of ``{"name": label, "value": text}``; the labels are
    the alert's (``alertname``, ``hostname``, ``rack``, ``severity`` and the
    rule's own).
    """

    matchers = models.JSONField(default=list)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    comment = models.CharField(max_length=500, validators=[text_validate], help_text="Why.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at"]

    def __str__(self) -> str:
        return f"silence {self.pk}: {self.comment[:40]}"


class MaintenanceWindow(models.Model):
    """Planned work on racks or hosts: their alerts are recorded but not notified while it lasts.

    ``weekly``: the window recurs every seven days from ``starts_at`` with the same length.
    """

    name = models.CharField(max_length=100, validators=[text_validate])
    racks = models.ManyToManyField(Rack, blank=True, related_name="maintenance_windows")
    hosts = models.ManyToManyField(Host, blank=True, related_name="maintenance_windows")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    weekly = models.BooleanField(default=False)
    comment = models.CharField(max_length=500, blank=True, validators=[text_validate])
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at"]

    def __str__(self) -> str:
        return self.name
