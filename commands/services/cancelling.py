"""Operators cancelling a command: every invocation still queued, dispatched or running ends ``cancelled``."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from commands.models import ACTIVE_STATES, ID_MAX, Cause, Command, Invocation, InvocationState
from commands.selectors import command_state, invocation_counts
from commands.services.lifecycle import CommandNotFound, EventOutbox, InvalidTransition, invocation_transition


def command_cancel(*, command_id: int, actor: str, now: datetime) -> Command:
    """Cancel every invocation of a command still queued, dispatched or running; ``InvalidTransition`` if none is.

    An agent that reports on a cancelled invocation is answered ``409`` with
    state ``cancelled``, which tells it to stop.
    """
    if command_id > ID_MAX:
        raise CommandNotFound(f"No command {command_id}.")
    outbox = EventOutbox()
    with transaction.atomic():
        command = Command.objects.select_for_update().filter(pk=command_id).first()
        if command is None:
            raise CommandNotFound(f"No command {command_id}.")
        active = list(
            Invocation.objects.select_for_update().filter(command=command, state__in=ACTIVE_STATES).order_by("id")
        )
        if not active:
            counts = invocation_counts(command_ids=[command.pk]).get(command.pk, {})
            state = command_state(counts=counts, cancelled=command.cancelled_at is not None)
            raise InvalidTransition(state=state, detail=f"Command {command.pk} is {state}: nothing is left to cancel.")
        command.cancelled_at, command.cancelled_by_name = now, actor
        command.save(update_fields=["cancelled_at", "cancelled_by_name"])
        for invocation in active:
            invocation.command = command
            invocation_transition(
                invocation=invocation,
                to=InvocationState.CANCELLED,
                cause=Cause.OPERATOR,
                now=now,
                outbox=outbox,
                actor=actor,
            )
        outbox.flush()
    return command
