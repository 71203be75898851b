"""What every write of the lifecycle goes through: its refusals, the event outbox, the guarded transition, rate control.

Every state change goes through ``invocation_transition``, which refuses a move
the table in ``commands.models.TRANSITIONS`` does not allow, records it with
its time and cause, and queues a ``command.updated`` event for after commit.

Locks are always taken in one order, a command's row before its invocations'
rows (in id order), so writers never wait on each other in a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet

from commands.instruments import transitions_count_on_commit
from commands.models import (
    ERROR_STATES,
    TERMINAL_STATES,
    TRANSITIONS,
    Cause,
    Command,
    CommandState,
    Invocation,
    InvocationState,
    InvocationTransition,
)
from commands.schema import CommandUpdate
from commands.selectors import command_state, command_update, invocation_counts
from common.errors import Refused
from common.events import Audience, Event, EventType, event_publish_on_commit

# --- Refusals (common.errors.Refused: the API's exception handler answers them) -----------------


class CommandRefused(Refused):
    """A request this lifecycle refuses: a code, a sentence saying why, and an HTTP status (400 unless given)."""


class InvalidTransition(Refused):
    """A move not allowed from the current state: ``409 {"error": "invalid_transition", ..., "state"}``."""

    status = 409

    def __init__(self, *, state: str, detail: str) -> None:
        super().__init__("invalid_transition", detail, fields={"state": state})
        self.state = state


class CommandNotFound(Refused):
    """No such command, or (for an agent) no invocation of it for the asking host: ``404 not_found``."""

    status = 404

    def __init__(self, detail: str) -> None:
        super().__init__("not_found", detail)


# --- Events of one transaction ------------------------------------------------------------------


@dataclass
class EventOutbox:
    """Events of one transaction, handed to ``common.events`` to leave after commit.

    Each transition's document is taken when it happens; the command's state,
    derived from all its invocations, is filled in once they have all moved.
    """

    updates: list[CommandUpdate] = field(default_factory=list)
    available: set[str] = field(default_factory=set)

    def flush(self) -> None:
        # Wake-ups first: within a process, events leave at most every 50 ms
        # (common.events), and an agent waiting for work should not wait behind
        # a dashboard's update.
        for hostname in sorted(self.available):
            event: Event = {
                "type": EventType.INVOCATION_AVAILABLE,
                "audience": Audience.AGENT,
                "host": hostname,
                "payload": {"hostname": hostname},
            }
            event_publish_on_commit(event)
        unknown = {u["id"] for u in self.updates if not u["commandState"]}
        if unknown:
            commands = Command.objects.filter(pk__in=unknown).values_list("pk", "cancelled_at")
            counts = invocation_counts(command_ids=[pk for pk, _ in commands])
            states = {pk: command_state(counts=counts.get(pk, {}), cancelled=at is not None) for pk, at in commands}
            for update in self.updates:
                update["commandState"] = update["commandState"] or states.get(update["id"], "")
        for update in self.updates:
            event_publish_on_commit(
                {"type": EventType.COMMAND_UPDATED, "audience": Audience.STAFF, "payload": dict(update)}
            )
        transitions_count_on_commit(self.updates)
        self.updates, self.available = [], set()


# --- The guarded move -----------------------------------------------------------------------------


def invocation_transition(
    *, invocation: Invocation, to: str, cause: str, now: datetime, outbox: EventOutbox, actor: str = "", **facts: Any
) -> None:
    """Move a locked invocation to ``to``, recording the move, or raise ``InvalidTransition`` with its state.

    ``facts`` are the fields the move sets (times, the agent's result). The
    caller holds the row lock (and, for a move to an end while rate control
    holds invocations back, the command's lock first, then calls
    ``command_progress``).
    """
    if to not in TRANSITIONS[invocation.state]:
        raise InvalidTransition(
            state=invocation.state,
            detail=f"The invocation of command {invocation.command_id} on {invocation.hostname} is "
            f"{invocation.state}; it cannot become {to}.",
        )
    before = invocation.state
    invocation.state, invocation.cause = to, cause
    if to in TERMINAL_STATES and invocation.finished_at is None:
        facts.setdefault("finished_at", now)
    for name, value in facts.items():
        setattr(invocation, name, value)
    invocation.save(update_fields=["state", "cause", *facts])
    InvocationTransition.objects.create(
        invocation=invocation, from_state=before, to_state=to, at=now, cause=cause, actor=actor
    )
    # Once one invocation is dispatched or running the command is in progress (a cancelled one
    # has nothing left to dispatch): no need to count all of a fleet's invocations at each hand-out.
    in_flight = (InvocationState.DISPATCHED, InvocationState.RUNNING)
    known = CommandState.IN_PROGRESS if to in in_flight else ""
    outbox.updates.append(command_update(invocation, at=now, known_command_state=known))


# --- Rate control ----------------------------------------------------------------------------------


def invocations_release(*, command: Command, limit: int, now: datetime, outbox: EventOutbox) -> None:
    """Let go up to ``limit`` queued invocations of a locked command to their agents, in hostname order."""
    if limit <= 0:
        return
    waiting = list(
        Invocation.objects.select_for_update()
        .filter(command=command, state=InvocationState.QUEUED, released_at__isnull=True)
        .order_by("hostname")[:limit]
    )
    deliver_by = now + timedelta(seconds=command.delivery_timeout_seconds)
    for invocation in waiting:
        invocation.released_at, invocation.deliver_by = now, deliver_by
    Invocation.objects.bulk_update(waiting, ["released_at", "deliver_by"])
    outbox.available.update(i.hostname for i in waiting)


def invocations_held_back(*, command_id: int) -> QuerySet[Invocation]:
    """A command's invocations rate control holds back: queued, not released. The set only ever shrinks."""
    return Invocation.objects.filter(command_id=command_id, state=InvocationState.QUEUED, released_at__isnull=True)


def command_progress(*, command: Command, now: datetime, outbox: EventOutbox) -> None:
    """Rate control, after invocations of a locked command ended.

    Past ``max_errors`` errors, every invocation rate control still holds back
    (queued, not released) is cancelled; released ones are already on their
    way to their agents and run their course. Otherwise queued ones are
    released into the slots that freed up, so at most ``max_concurrency`` are
    released, dispatched or running at once.
    """
    held = invocations_held_back(command_id=command.pk)
    if not held.exists():
        # Nothing held back (the common case for a command within max_concurrency): nothing to
        # release or cancel, and no need to count every invocation of a fleet at each report.
        return
    in_flight = Q(state__in=[InvocationState.DISPATCHED, InvocationState.RUNNING]) | Q(
        state=InvocationState.QUEUED, released_at__isnull=False
    )
    tally = Invocation.objects.filter(command=command).aggregate(
        errors=Count("id", filter=Q(state__in=ERROR_STATES)), in_flight=Count("id", filter=in_flight)
    )
    errors, in_flight_count = tally["errors"], tally["in_flight"]
    if errors > command.max_errors:
        for invocation in held.select_for_update().order_by("id"):
            invocation.command = command
            invocation_transition(
                invocation=invocation, to=InvocationState.CANCELLED, cause=Cause.MAX_ERRORS, now=now, outbox=outbox
            )
        return
    if command.cancelled_at is None:
        invocations_release(command=command, limit=command.max_concurrency - in_flight_count, now=now, outbox=outbox)
