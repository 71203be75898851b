"""Retention (the ``commands.retention`` job): finished commands and expired idempotency keys go."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet

from commands.models import ACTIVE_STATES, Command, IdempotencyKey, Invocation, InvocationTransition
from commands.services.creating import IDEMPOTENCY_WINDOW

PRUNE_CHUNK = 500


def commands_prune(*, now: datetime) -> int:
    """Remove commands finished more than ``TWIN_COMMAND_RETENTION_DAYS`` ago, and expired idempotency keys.

    A command is finished when none of its invocations is active; its age is
    that of its last invocation's end. Deleted in chunks, so a long backlog
    never holds a lock for long.
    """
    cutoff = now - timedelta(days=settings.TWIN_COMMAND_RETENTION_DAYS)
    IdempotencyKey.objects.filter(created_at__lt=now - IDEMPOTENCY_WINDOW).delete()
    old: QuerySet[Command] = (
        Command.objects.filter(issued_at__lt=cutoff)
        .exclude(invocations__state__in=ACTIVE_STATES)
        .exclude(invocations__finished_at__gte=cutoff)
    )
    removed = 0
    while ids := list(old.values_list("pk", flat=True)[:PRUNE_CHUNK]):
        with transaction.atomic():
            InvocationTransition.objects.filter(invocation__command_id__in=ids).delete()
            Invocation.objects.filter(command_id__in=ids).delete()
            IdempotencyKey.objects.filter(command_id__in=ids).delete()
            Command.objects.filter(pk__in=ids).delete()
        removed += len(ids)
    return removed
