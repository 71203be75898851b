"""Commands, their invocations on each host, every transition, and who may run a shell where.

A command's own state is never stored: it is derived from its invocations and
whether an operator cancelled it (``commands.selectors.command_state``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class InvocationState(models.TextChoices):
    """Where one host's invocation of a command stands (docs/api.md, "Command lifecycle")."""

    QUEUED = "queued"
    DISPATCHED = "dispatched"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    UNDELIVERABLE = "undeliverable"


S = InvocationState
# Ids are 64-bit: a larger number names nothing (and must not reach the database).
ID_MAX = 2**63 - 1
# The only moves an invocation can make; anything else is refused with its current state.
TRANSITIONS: dict[str, frozenset[str]] = {
    S.QUEUED: frozenset({S.DISPATCHED, S.CANCELLED, S.UNDELIVERABLE}),
    S.DISPATCHED: frozenset({S.RUNNING, S.SUCCEEDED, S.FAILED, S.TIMED_OUT, S.CANCELLED}),
    S.RUNNING: frozenset({S.SUCCEEDED, S.FAILED, S.TIMED_OUT, S.CANCELLED}),
    S.SUCCEEDED: frozenset(),
    S.FAILED: frozenset(),
    S.TIMED_OUT: frozenset(),
    S.CANCELLED: frozenset(),
    S.UNDELIVERABLE: frozenset(),
}
ACTIVE_STATES = frozenset({S.QUEUED, S.DISPATCHED, S.RUNNING})
TERMINAL_STATES = frozenset(state for state, moves in TRANSITIONS.items() if not moves)
# Endings that count against a command's ``max_errors`` (a cancellation is an operator's or rate control's doing).
ERROR_STATES = frozenset({S.FAILED, S.TIMED_OUT, S.UNDELIVERABLE})


class Cause(models.TextChoices):
    """Why an invocation moved."""

    CREATED = "created", "created by an operator"
    BATCH = "batch", "handed out in a batch answer"
    POLL = "poll", "handed out by the long poll"
    AGENT = "agent", "reported by the agent"
    OPERATOR = "operator", "cancelled by an operator"
    TIMEOUT = "timeout", "not finished within its timeout"
    DELIVERY_TIMEOUT = "delivery_timeout", "not handed out before its delivery deadline"
    MAX_ERRORS = "max_errors", "the command's error threshold was passed"


class CommandState(models.TextChoices):
    """A command's state, derived from its invocations."""

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Command(models.Model):
    """What an operator issued: an action of the catalogue with checked arguments, its targets and limits.

    Who issued it is kept by name as well as by user, so the record survives the
    user's deletion. It fans out into one ``Invocation`` per target host.
    """

    action = models.CharField(max_length=32)
    args = models.JSONField(default=dict, blank=True)
    targets = models.JSONField(help_text="The targets as the operator named them: hosts or a rack.")
    comment = models.CharField(max_length=1000, blank=True)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    issued_by_name = models.CharField(max_length=150)
    issued_at = models.DateTimeField(db_index=True)
    timeout_seconds = models.PositiveIntegerField(help_text="Longest run, counted from dispatch.")
    delivery_timeout_seconds = models.PositiveIntegerField(
        help_text="Longest wait for the agent to take an invocation, counted from its release."
    )
    max_concurrency = models.PositiveIntegerField(help_text="Most invocations released (in flight) at once.")
    max_errors = models.PositiveIntegerField(help_text="Errors tolerated before every queued invocation is cancelled.")
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by_name = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-id"]
        permissions = [("run_shell", "Can issue shell commands (on hosts where shell is enabled)")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action}"


class Invocation(models.Model):
    """One host's share of a command, with the facts of its lifecycle.

    ``released_at`` marks an invocation rate control let go: only released ones
    are handed to the agent, and its delivery deadline (``deliver_by``) runs from
    then. ``timeout_at`` is set when it is dispatched. Times named ``agent_*``
    are the agent's clock, kept as reported; the others are the server's.
    """

    command = models.ForeignKey(Command, on_delete=models.CASCADE, related_name="invocations")
    # Kept by name too: a host deleted from the inventory leaves its command history readable.
    host = models.ForeignKey("hosts.Host", null=True, on_delete=models.SET_NULL, related_name="+")
    hostname = models.CharField(max_length=253)
    state = models.CharField(max_length=16, choices=InvocationState.choices, default=InvocationState.QUEUED)
    cause = models.CharField(max_length=32, choices=Cause.choices, default=Cause.CREATED)
    queued_at = models.DateTimeField()
    released_at = models.DateTimeField(null=True, blank=True)
    deliver_by = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    timeout_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    agent_started_at = models.DateTimeField(null=True, blank=True)
    agent_finished_at = models.DateTimeField(null=True, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    output = models.TextField(blank=True)
    output_truncated = models.BooleanField(default=False)
    data = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["command_id", "hostname"]
        constraints = [models.UniqueConstraint(fields=["command", "host"], name="invocation_one_per_host")]
        indexes = [
            # What an agent may be handed: a few rows per host among all the history.
            models.Index(
                fields=["host", "state"],
                condition=Q(state__in=["queued", "dispatched", "running"]),
                name="invocation_active_by_host",
            ),
            # What the deadline job looks for every second.
            models.Index(fields=["state", "deliver_by"], name="invocation_delivery_due"),
            models.Index(fields=["state", "timeout_at"], name="invocation_timeout_due"),
        ]

    def __str__(self) -> str:
        return f"#{self.command_id} on {self.hostname}"


class InvocationTransition(models.Model):
    """One move of an invocation: from which state to which, when, why, and by whom (an operator's name)."""

    invocation = models.ForeignKey(Invocation, on_delete=models.CASCADE, related_name="transitions")
    from_state = models.CharField(max_length=16, blank=True, help_text="Empty for the first (queued).")
    to_state = models.CharField(max_length=16, choices=InvocationState.choices)
    at = models.DateTimeField()
    cause = models.CharField(max_length=32, choices=Cause.choices)
    actor = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["invocation_id", "id"]

    def __str__(self) -> str:
        return f"{self.from_state or '-'} -> {self.to_state} ({self.cause})"


class IdempotencyKey(models.Model):
    """A create already done under an ``Idempotency-Key``: the same user and key get the same command.

    ``fingerprint`` (SHA-256 of the request body) tells a retry from a
    different request that reuses the key by mistake.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=128)
    fingerprint = models.CharField(max_length=64)
    command = models.ForeignKey(Command, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_per_user")]

    def __str__(self) -> str:
        return self.key


# A grant not revoked: the one rule of "shell is enabled on this host".
ACTIVE_GRANT = Q(revoked_at__isnull=True)


class ShellAccessQuerySet(models.QuerySet):
    """Grants of shell access, past and present."""

    def active(self) -> ShellAccessQuerySet:
        """The grants in force: shell commands run on their hosts."""
        return self.filter(ACTIVE_GRANT)


class ShellAccess(models.Model):
    """An admin's decision that a host accepts shell commands, and its withdrawal: who and when, kept.

    The shell action exists for a host only while it has a grant not revoked
    (``ShellAccess.objects.active()``).
    """

    host = models.ForeignKey("hosts.Host", on_delete=models.CASCADE, related_name="+")
    granted_by = models.CharField(max_length=150)
    granted_at = models.DateTimeField()
    revoked_by = models.CharField(max_length=150, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ShellAccessQuerySet.as_manager()

    class Meta:
        ordering = ["-granted_at"]
        verbose_name = "shell access"
        verbose_name_plural = "shell access"
        constraints = [
            models.UniqueConstraint(fields=["host"], condition=ACTIVE_GRANT, name="shell_access_one_active_per_host")
        ]

    def __str__(self) -> str:
        return f"shell on {self.host}"
