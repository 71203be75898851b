"""Reads of commands: their derived state, their documents, lists with filters, the catalogue."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, F, Q, QuerySet, Subquery

from commands.actions import CATALOGUE, SHELL_PERMISSION
from commands.models import (
    ACTIVE_STATES,
    ID_MAX,
    TERMINAL_STATES,
    Command,
    CommandState,
    Invocation,
    InvocationState,
    InvocationTransition,
)
from commands.schema import (
    DEFAULT_DELIVERY_TIMEOUT_SECONDS,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_ERRORS,
    DEFAULT_TIMEOUT_SECONDS,
    ActionCatalogue,
    AgentInvocation,
    CommandDocument,
    CommandList,
    CommandResult,
    CommandUpdate,
    InvocationCounts,
    InvocationDocument,
    TransitionDocument,
)
from common.formats import iso_utc

COUNT_KEYS: dict[str, str] = {
    InvocationState.QUEUED: "queued",
    InvocationState.DISPATCHED: "dispatched",
    InvocationState.RUNNING: "running",
    InvocationState.SUCCEEDED: "succeeded",
    InvocationState.FAILED: "failed",
    InvocationState.TIMED_OUT: "timedOut",
    InvocationState.CANCELLED: "cancelled",
    InvocationState.UNDELIVERABLE: "undeliverable",
}
VIEW_PERMISSION = "commands.view_command"
ADD_PERMISSION = "commands.add_command"
# Either reads commands (who sends, reads); the live side gives command-update to the same (twin.audiences).
COMMAND_READ_PERMISSIONS = (VIEW_PERMISSION, ADD_PERMISSION)
LIST_LIMIT_DEFAULT = 50
LIST_LIMIT_MAX = 200


def commands_readable_by(user: Any) -> bool:
    """Whether a user may read commands: ``commands.view_command``, or ``commands.add_command`` (who sends, reads)."""
    return bool(user and user.is_authenticated and any(user.has_perm(name) for name in COMMAND_READ_PERMISSIONS))


def _iso(moment: datetime | None) -> str | None:
    return iso_utc(moment) if moment is not None else None


def command_state(*, counts: Mapping[str, int], cancelled: bool) -> str:
    """A command's state from how many of its invocations are in each state.

    ``cancelled`` once an operator cancelled it; otherwise ``pending`` while every
    invocation is queued, ``in_progress`` while any is active, then
    ``completed`` if every one succeeded and ``failed`` if not.
    """
    if cancelled:
        return CommandState.CANCELLED
    total = sum(counts.values())
    if any(counts.get(state, 0) for state in ACTIVE_STATES):
        return CommandState.PENDING if counts.get(InvocationState.QUEUED, 0) == total else CommandState.IN_PROGRESS
    return CommandState.COMPLETED if counts.get(InvocationState.SUCCEEDED, 0) == total else CommandState.FAILED


def commands_with_state(queryset: QuerySet[Command] | None = None) -> QuerySet[Command]:
    """Commands annotated with what their state is derived from, so a state can be filtered in SQL."""
    queryset = queryset if queryset is not None else Command.objects.all()
    return queryset.annotate(
        n_all=Count("invocations"),
        n_active=Count("invocations", filter=Q(invocations__state__in=ACTIVE_STATES)),
        n_queued=Count("invocations", filter=Q(invocations__state=InvocationState.QUEUED)),
        n_succeeded=Count("invocations", filter=Q(invocations__state=InvocationState.SUCCEEDED)),
    )


def state_filter(state: str) -> Q:
    """The condition on ``commands_with_state`` rows for one command state (the same rule as ``command_state``)."""
    live = Q(cancelled_at__isnull=True)
    if state == CommandState.CANCELLED:
        return Q(cancelled_at__isnull=False)
    if state == CommandState.PENDING:
        return live & Q(n_active__gt=0, n_queued=F("n_all"))
    if state == CommandState.IN_PROGRESS:
        return live & Q(n_active__gt=0) & ~Q(n_queued=F("n_all"))
    if state == CommandState.COMPLETED:
        return live & Q(n_active=0, n_succeeded=F("n_all"))
    if state == CommandState.FAILED:
        return live & Q(n_active=0) & ~Q(n_succeeded=F("n_all"))
    raise ValueError(f"unknown command state {state!r}")


def invocation_counts(*, command_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """For each command, how many invocations are in each state (one query)."""
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    rows = (
        Invocation.objects.filter(command_id__in=list(command_ids))
        .values_list("command_id", "state")
        .annotate(n=Count("id"))
        .order_by()
    )
    for command_id, state, n in rows:
        counts[command_id][state] = n
    return counts


def _counts_document(counts: Mapping[str, int]) -> InvocationCounts:
    return {key: counts.get(state, 0) for state, key in COUNT_KEYS.items()}  # type: ignore[return-value]


def _command_document(command: Command, counts: Mapping[str, int]) -> CommandDocument:
    return {
        "id": command.pk,
        "action": command.action,
        "args": command.args,
        "targets": command.targets,
        "state": command_state(counts=counts, cancelled=command.cancelled_at is not None),
        "issuedBy": command.issued_by_name,
        "issuedAt": iso_utc(command.issued_at),
        "comment": command.comment,
        "timeoutSeconds": command.timeout_seconds,
        "deliveryTimeoutSeconds": command.delivery_timeout_seconds,
        "maxConcurrency": command.max_concurrency,
        "maxErrors": command.max_errors,
        "cancelledAt": _iso(command.cancelled_at),
        "cancelledBy": command.cancelled_by_name or None,
        "counts": _counts_document(counts),
    }


def invocation_document(invocation: Invocation, transitions: Iterable[InvocationTransition]) -> InvocationDocument:
    """An invocation with every transition it made."""
    moves: list[TransitionDocument] = []
    for t in transitions:
        move: TransitionDocument = {"state": t.to_state, "at": iso_utc(t.at), "cause": t.cause}
        if t.actor:
            move["by"] = t.actor
        moves.append(move)
    return {
        "commandId": invocation.command_id,
        "host": invocation.hostname,
        "state": invocation.state,
        "cause": invocation.cause,
        "queuedAt": iso_utc(invocation.queued_at),
        "releasedAt": _iso(invocation.released_at),
        "deliverBy": _iso(invocation.deliver_by),
        "dispatchedAt": _iso(invocation.dispatched_at),
        "timeoutAt": _iso(invocation.timeout_at),
        "startedAt": _iso(invocation.started_at),
        "finishedAt": _iso(invocation.finished_at),
        "agentStartedAt": _iso(invocation.agent_started_at),
        "agentFinishedAt": _iso(invocation.agent_finished_at),
        "exitCode": invocation.exit_code,
        "output": invocation.output,
        "outputTruncated": invocation.output_truncated,
        "data": invocation.data,
        "transitions": moves,
    }


def invocation_documents(invocations: list[Invocation]) -> list[InvocationDocument]:
    """Documents of these invocations, their transitions read in one query."""
    moves: dict[int, list[InvocationTransition]] = defaultdict(list)
    for t in InvocationTransition.objects.filter(invocation_id__in=[i.pk for i in invocations]).order_by("id"):
        moves[t.invocation_id].append(t)
    return [invocation_document(i, moves[i.pk]) for i in invocations]


def command_document(*, command_id: int) -> CommandDocument | None:
    """A command with its invocations and their transitions (three queries), or None."""
    if command_id > ID_MAX:
        return None
    command = Command.objects.filter(pk=command_id).first()
    if command is None:
        return None
    invocations = list(Invocation.objects.filter(command_id=command_id).order_by("hostname"))
    counts: dict[str, int] = defaultdict(int)
    for invocation in invocations:
        counts[invocation.state] += 1
    document = _command_document(command, counts)
    document["invocations"] = invocation_documents(invocations)
    return document


@dataclass(frozen=True)
class CommandFilters:
    """What ``GET /api/commands`` may filter on; every one optional."""

    host: str | None = None
    rack: str | None = None
    state: str | None = None
    action: str | None = None


def commands_list(
    *, filters: CommandFilters, limit: int = LIST_LIMIT_DEFAULT, before_id: int | None = None
) -> CommandList:
    """A page of commands, newest first, and the cursor of the next page.

    With a ``host`` filter each command carries that host's invocation, which
    is what a host's panel shows.
    """
    queryset = Command.objects.all()
    # Subqueries rather than joins: a join on invocations would also narrow the counts.
    if filters.host:
        queryset = queryset.filter(
            pk__in=Subquery(Invocation.objects.filter(hostname=filters.host).values("command_id"))
        )
    if filters.rack:
        queryset = queryset.filter(
            pk__in=Subquery(Invocation.objects.filter(host__rack__name=filters.rack).values("command_id"))
        )
    if filters.action:
        queryset = queryset.filter(action=filters.action)
    if before_id is not None:
        queryset = queryset.filter(pk__lt=before_id)
    if filters.state:
        queryset = commands_with_state(queryset).filter(state_filter(filters.state))
    page = list(queryset.order_by("-pk")[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    counts = invocation_counts(command_ids=[c.pk for c in page])
    documents = [_command_document(c, counts.get(c.pk, {})) for c in page]
    if filters.host:
        mine = Invocation.objects.filter(command_id__in=[c.pk for c in page], hostname=filters.host)
        by_command = {i.command_id: i for i in mine}
        invocations = invocation_documents(list(by_command.values()))
        for document in documents:
            document["invocations"] = [i for i in invocations if i["commandId"] == document["id"]]
    return {"commands": documents, "next": str(page[-1].pk) if more else None}


def command_update(invocation: Invocation, *, at: datetime, known_command_state: str = "") -> CommandUpdate:
    """The ``command-update`` document of an invocation as it stands (its command must be loaded).

    The command's state depends on all its invocations: unless the caller knows
    it, the services fill it in once every invocation of a change has moved.
    """
    payload: CommandUpdate = {
        "id": invocation.command_id,
        "host": invocation.hostname,
        "action": invocation.command.action,
        "state": invocation.state,
        "commandState": known_command_state,
        "cause": invocation.cause,
        "at": iso_utc(at),
        "queuedAt": iso_utc(invocation.queued_at),
        "dispatchedAt": _iso(invocation.dispatched_at),
        "startedAt": _iso(invocation.started_at),
        "finishedAt": _iso(invocation.finished_at),
    }
    if invocation.state in TERMINAL_STATES:
        result: CommandResult = {
            "exitCode": invocation.exit_code,
            "output": invocation.output,
            "outputTruncated": invocation.output_truncated,
            "data": invocation.data,
        }
        payload["result"] = result
    return payload


def agent_invocation(invocation: Invocation) -> AgentInvocation:
    """An invocation as its agent receives it (its command must be loaded)."""
    command = invocation.command
    return {
        "commandId": command.pk,
        "action": command.action,
        "args": command.args,
        "timeoutSeconds": command.timeout_seconds,
        "issuedAt": iso_utc(command.issued_at),
    }


def action_catalogue() -> ActionCatalogue:
    """Every action a command may name, with its arguments' JSON Schema, and the defaults of the limits."""
    return {
        "actions": [
            {
                "name": spec.name,
                "description": spec.description,
                "argsSchema": spec.args_schema(),
                "permissions": ["commands.add_command", *([SHELL_PERMISSION] if spec.shell else [])],
                "requiresHostEnablement": spec.shell,
            }
            for spec in CATALOGUE.values()
        ],
        "defaults": {
            "timeoutSeconds": DEFAULT_TIMEOUT_SECONDS,
            "deliveryTimeoutSeconds": DEFAULT_DELIVERY_TIMEOUT_SECONDS,
            "maxConcurrency": DEFAULT_MAX_CONCURRENCY,
            "maxErrors": DEFAULT_MAX_ERRORS,
        },
    }
