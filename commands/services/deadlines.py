"""Deadlines (the ``commands.deadlines`` job): invocations end when their time is up, with nobody asking."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import Q

from commands.models import Cause, Command, Invocation, InvocationState
from commands.services.lifecycle import EventOutbox, command_progress, invocation_transition


def _deadlines_pass(*, due: Q, to: str, cause: str, now: datetime) -> int:
    """End every invocation matching ``due`` with ``to``, one command (and transaction) at a time."""
    command_ids = sorted(set(Invocation.objects.filter(due).values_list("command_id", flat=True)))
    ended = 0
    for command_id in command_ids:
        outbox = EventOutbox()
        with transaction.atomic():
            command = Command.objects.select_for_update().get(pk=command_id)
            # Read again under the lock: an agent's result may have ended one meanwhile.
            for invocation in Invocation.objects.select_for_update().filter(due, command=command).order_by("id"):
                invocation.command = command
                invocation_transition(invocation=invocation, to=to, cause=cause, now=now, outbox=outbox)
                ended += 1
            command_progress(command=command, now=now, outbox=outbox)
            outbox.flush()
    return ended


def invocations_time_out(*, now: datetime) -> int:
    """End with ``timed_out`` every invocation dispatched more than its command's timeout ago."""
    return _deadlines_pass(
        due=Q(state__in=[InvocationState.DISPATCHED, InvocationState.RUNNING], timeout_at__lte=now),
        to=InvocationState.TIMED_OUT,
        cause=Cause.TIMEOUT,
        now=now,
    )


def invocations_expire_undelivered(*, now: datetime) -> int:
    """End with ``undeliverable`` every released invocation its agent did not take before its delivery deadline."""
    return _deadlines_pass(
        due=Q(state=InvocationState.QUEUED, deliver_by__lte=now),
        to=InvocationState.UNDELIVERABLE,
        cause=Cause.DELIVERY_TIMEOUT,
        now=now,
    )
