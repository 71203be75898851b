"""Shell access (the admin's host list): an audited switch per host, kept as history when withdrawn."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import QuerySet

from commands.models import ShellAccess
from hosts.models import Host


def shell_enable(*, hosts: QuerySet[Host], actor: str, now: datetime) -> int:
    """Let shell commands run on these hosts (those not enabled yet), recording who and when."""
    with transaction.atomic():
        enabled = set(ShellAccess.objects.active().filter(host__in=hosts).values_list("host_id", flat=True))
        grants = [
            ShellAccess(host=h, granted_by=actor, granted_at=now)
            for h in hosts.filter(is_virtual=False)
            if h.pk not in enabled
        ]
        ShellAccess.objects.bulk_create(grants)
    return len(grants)


def shell_disable(*, hosts: QuerySet[Host], actor: str, now: datetime) -> int:
    """Withdraw shell commands from these hosts, recording who and when (the grants stay as history)."""
    return ShellAccess.objects.active().filter(host__in=hosts).update(revoked_by=actor, revoked_at=now)
