"""Delivery: handing invocations to their agents, and what agents report of them.

Handing invocations out locks only the invocations and never ends one; a
report locks its command only while rate control holds invocations back.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Q, QuerySet

from commands.models import ID_MAX, TERMINAL_STATES, Cause, Command, Invocation, InvocationState
from commands.schema import AgentInvocation, ResultReport
from commands.selectors import agent_invocation
from commands.services.lifecycle import (
    CommandNotFound,
    CommandRefused,
    EventOutbox,
    command_progress,
    invocation_transition,
    invocations_held_back,
)
from hosts.models import Host

# The agent's own clock, as reported, is kept only when it is a plausible time.
AGENT_TIME_RANGE = (1970, 2200)
# Numbers in an agent's data stay within 64 bits: PostgreSQL's jsonb writes a large float back as a
# whole number without exponent, which no 64-bit JSON encoder (the renderer's, the event layer's) can send.
JSON_NUMBER_MAX = 2**63


# --- Hand out ------------------------------------------------------------------------------------


def invocations_deliverable(*, host_id: int, now: datetime) -> QuerySet[Invocation]:
    """What a host's agent is handed: its released queued invocations, and dispatched ones not yet acknowledged.

    A dispatched invocation is handed out again until acknowledged (an answer
    may be lost), unless its time is up and the deadline job is about to end it.
    """
    deliverable = Q(state=InvocationState.QUEUED, released_at__isnull=False) | Q(
        state=InvocationState.DISPATCHED, timeout_at__gt=now
    )
    return Invocation.objects.filter(Q(host_id=host_id) & deliverable)


# Stand-ins compiled into the statement of ``deliverable_exists``, and found again among its parameters.
_PROBE_HOST_ID = -917_372_546_113
_PROBE_NOW = datetime(2001, 2, 3, 4, 5, 6, 789_012, tzinfo=UTC)
# Per database alias: the SQL, its parameters, and where the host's id and the time stand among them.
_probe_statements: dict[str, tuple[str, tuple[Any, ...], int, int]] = {}


def _deliverable_statement(db: BaseDatabaseWrapper) -> tuple[str, tuple[Any, ...], int, int]:
    statement = _probe_statements.get(db.alias)
    if statement is None:
        query = invocations_deliverable(host_id=_PROBE_HOST_ID, now=_PROBE_NOW).query.exists()
        sql, params = query.get_compiler(connection=db).as_sql()
        params = tuple(params)
        now_at = params.index(db.ops.adapt_datetimefield_value(_PROBE_NOW))
        statement = (sql, params, params.index(_PROBE_HOST_ID), now_at)
        _probe_statements[db.alias] = statement
    return statement


def deliverable_exists(*, host_id: int, now: datetime) -> bool:
    """``invocations_deliverable(...).exists()``: the ORM's own statement, compiled once per database.

    It runs for every batch, and building the ORM query cost more than running
    it (a signed one-sample batch: about a tenth of its time in py-spy, issue 16).
    So the query is compiled once, with stand-ins for the host and the time,
    and run again with theirs: the condition is written once, in the queryset.
    ``now`` is aware (``timezone.now()``), which the ORM passes to the database
    as its backend adapts it, as here.
    """
    db = connections[DEFAULT_DB_ALIAS]
    sql, template, host_at, now_at = _deliverable_statement(db)
    params = list(template)
    params[host_at], params[now_at] = host_id, db.ops.adapt_datetimefield_value(now)
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone() is not None


def invocations_dispatch(*, host_id: int, now: datetime, cause: str) -> list[AgentInvocation]:
    """Hand a host's agent its released invocations, moving queued ones to ``dispatched``.

    Invocations already dispatched but not acknowledged are handed out again:
    the answer that carried them may have been lost. Agents dedupe by command id.
    Costs one indexed query when there is nothing (it runs for every batch).
    """
    if not deliverable_exists(host_id=host_id, now=now):
        return []
    outbox = EventOutbox()
    with transaction.atomic():
        invocations = list(
            invocations_deliverable(host_id=host_id, now=now)
            .select_for_update(of=("self",))
            .select_related("command")
            .order_by("id")
        )
        for invocation in invocations:
            if invocation.state == InvocationState.QUEUED:
                timeout_at = now + timedelta(seconds=invocation.command.timeout_seconds)
                invocation_transition(
                    invocation=invocation,
                    to=InvocationState.DISPATCHED,
                    cause=cause,
                    now=now,
                    outbox=outbox,
                    dispatched_at=now,
                    timeout_at=timeout_at,
                )
        outbox.flush()
    return [agent_invocation(i) for i in invocations]


# --- Acknowledge and report ----------------------------------------------------------------------


def output_truncate(output: str, *, limit: int) -> tuple[str, bool]:
    """The output cut to ``limit`` UTF-8 bytes with a marker saying how many were cut, and whether it was.

    NUL characters become U+FFFD: PostgreSQL text cannot hold them.
    """
    raw = output.replace("\x00", "\ufffd").encode("utf-8", errors="replace")
    if len(raw) <= limit:
        return raw.decode("utf-8"), False
    kept = raw[:limit].decode("utf-8", errors="ignore")
    cut = len(raw) - len(kept.encode("utf-8"))
    return f"{kept}\n…[truncated {cut} bytes]", True


def _agent_time(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise CommandRefused("invalid_result", f"{name} needs a time zone (e.g. a trailing Z).")
    if not AGENT_TIME_RANGE[0] <= value.year <= AGENT_TIME_RANGE[1]:
        raise CommandRefused("invalid_result", f"{name} is not a plausible time.")
    return value


def _json_numbers_check(value: Any) -> str | None:
    """Why a decoded JSON value cannot be stored and sent back as it came, or None."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif (
            isinstance(item, int | float)
            and not isinstance(item, bool)
            and not -JSON_NUMBER_MAX < item < JSON_NUMBER_MAX
        ):
            return f"the number {item!r} is beyond 64 bits (at most 2^63 in magnitude)."
    return None


def _report_check(report: ResultReport) -> None:
    if report.status == InvocationState.RUNNING and (
        report.exit_code is not None or report.output is not None or report.data is not None or report.finished_at
    ):
        raise CommandRefused(
            "invalid_result", "An acknowledgement (status running) carries only started_at; report the outcome later."
        )
    _agent_time(report.started_at, "started_at")
    _agent_time(report.finished_at, "finished_at")
    if report.data is not None:
        if reason := _json_numbers_check(report.data):
            raise CommandRefused("invalid_result", f"data: {reason}")
        encoded = orjson.dumps(report.data)
        # PostgreSQL's jsonb refuses NUL characters in strings.
        if b"\\u0000" in encoded:
            raise CommandRefused("invalid_result", "data may not contain NUL characters.")
        if len(encoded) > settings.TWIN_COMMAND_OUTPUT_MAX_BYTES:
            raise CommandRefused(
                "invalid_result",
                f"data is {len(encoded)} bytes as JSON; at most {settings.TWIN_COMMAND_OUTPUT_MAX_BYTES} "
                "(TWIN_COMMAND_OUTPUT_MAX_BYTES).",
            )


def _no_invocation(*, command_id: int, host_id: int) -> CommandNotFound:
    # Never reveal whether another host's command exists: the same 404 for both.
    hostname = Host.objects.filter(pk=host_id).values_list("hostname", flat=True).first()
    return CommandNotFound(f"Command {command_id} has no invocation for {hostname or f'host {host_id}'}.")


def invocation_report(*, host_id: int, command_id: int, report: ResultReport, now: datetime) -> Invocation:
    """Record what a host's agent says of its invocation: acknowledged (``running``), or its outcome.

    The same acknowledgement or outcome again changes nothing (a retry); any
    other report on an invocation that has ended is an ``InvalidTransition``.
    Only the target host finds its invocation: anyone else gets ``CommandNotFound``.
    """
    if command_id > ID_MAX:
        raise _no_invocation(command_id=command_id, host_id=host_id)
    _report_check(report)
    found = Invocation.objects.filter(command_id=command_id, host_id=host_id).values_list("pk", flat=True).first()
    if found is None:
        raise _no_invocation(command_id=command_id, host_id=host_id)
    # Rate control needs the command's lock only while it holds invocations back. Once none is
    # held back none ever is again, so the reports of a fleet within its max_concurrency do not
    # queue behind each other on one row.
    rate_controlled = invocations_held_back(command_id=command_id).exists()
    outbox = EventOutbox()
    with transaction.atomic():
        commands = Command.objects.select_for_update() if rate_controlled else Command.objects
        command = commands.get(pk=command_id)
        invocation = Invocation.objects.select_for_update().get(pk=found)
        invocation.command = command
        if report.status == InvocationState.RUNNING:
            if invocation.state != InvocationState.RUNNING:
                invocation_transition(
                    invocation=invocation,
                    to=InvocationState.RUNNING,
                    cause=Cause.AGENT,
                    now=now,
                    outbox=outbox,
                    started_at=now,
                    agent_started_at=report.started_at,
                )
        else:
            output, truncated = output_truncate(report.output or "", limit=settings.TWIN_COMMAND_OUTPUT_MAX_BYTES)
            outcome = {
                "exit_code": report.exit_code,
                "output": output,
                "output_truncated": truncated,
                "data": report.data,
            }
            if (
                invocation.state in TERMINAL_STATES
                and invocation.state == report.status
                and all(getattr(invocation, name) == value for name, value in outcome.items())
            ):
                return invocation
            invocation_transition(
                invocation=invocation,
                to=report.status,
                cause=Cause.AGENT,
                now=now,
                outbox=outbox,
                started_at=invocation.started_at or now,
                agent_started_at=report.started_at or invocation.agent_started_at,
                agent_finished_at=report.finished_at,
                **outcome,
            )
            if rate_controlled:
                command_progress(command=command, now=now, outbox=outbox)
        outbox.flush()
    return invocation
