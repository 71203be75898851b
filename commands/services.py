"""Writes of the command lifecycle: create and fan out, hand out, acknowledge and report, cancel, deadlines, retention.

Every state change goes through ``invocation_transition``, which refuses a move
the table in ``commands.models.TRANSITIONS`` does not allow, records it with
its time and cause, and queues a ``command.updated`` event for after commit.

Locks are always taken in one order, a command's row before its invocations'
rows (in id order), so writers never wait on each other in a cycle. Handing
invocations out locks only the invocations and never ends one; a report locks
its command only while rate control holds invocations back.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q, QuerySet

from commands.actions import CATALOGUE, SHELL_PERMISSION
from commands.instruments import transitions_count_on_commit
from commands.models import (
    ACTIVE_STATES,
    ERROR_STATES,
    TERMINAL_STATES,
    TRANSITIONS,
    Cause,
    Command,
    CommandState,
    IdempotencyKey,
    Invocation,
    InvocationState,
    InvocationTransition,
    ShellAccess,
)
from commands.schema import AgentInvocation, CommandCreateRequest, CommandUpdate, ResultReport, Targets
from commands.selectors import ADD_PERMISSION, agent_invocation, command_state, command_update, invocation_counts
from common.events import Audience, Event, EventType, event_publish_on_commit
from hosts.models import Host, Rack
from hosts.schema import hostname_normalize

S = InvocationState
IDEMPOTENCY_WINDOW = timedelta(hours=24)
# The agent's own clock, as reported, is kept only when it is a plausible time.
AGENT_TIME_RANGE = (1970, 2200)
PRUNE_CHUNK = 500


class CommandRefused(Exception):
    """A request this lifecycle refuses: an HTTP status, a code and a sentence saying why."""

    def __init__(self, code: str, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.code, self.detail, self.status = code, detail, status


class InvalidTransition(Exception):
    """A move not allowed from the current state (a ``409`` carrying that state)."""

    def __init__(self, *, state: str, detail: str) -> None:
        super().__init__(detail)
        self.state, self.detail = state, detail


class CommandNotFound(Exception):
    """No such command, or (for an agent) no invocation of it for the asking host."""


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


def invocation_transition(
    *, invocation: Invocation, to: str, cause: str, now: datetime, outbox: EventOutbox, actor: str = "", **facts: Any
) -> None:
    """Move a locked invocation to ``to``, recording the move, or raise ``InvalidTransition`` with its state.

    ``facts`` are the fields the move sets (times, the agent's result). The
    caller holds the row lock (and, for a move to an end while rate control
    holds invocations back, the command's lock first, then calls
    ``_command_progress``).
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
    known = CommandState.IN_PROGRESS if to in (S.DISPATCHED, S.RUNNING) else ""
    outbox.updates.append(command_update(invocation, at=now, known_command_state=known))


# --- Create and fan out ----------------------------------------------------------------------


@dataclass(frozen=True)
class CommandCreated:
    """A command, and whether this request created it (False: an earlier request with the same idempotency key)."""

    command: Command
    created: bool


def request_fingerprint(body: bytes) -> str:
    """What tells a retried create from another request reusing its idempotency key."""
    return hashlib.sha256(body).hexdigest()


def command_create(
    *,
    user: AbstractBaseUser | AnonymousUser,
    request: CommandCreateRequest,
    now: datetime,
    idempotency_key: str | None = None,
    fingerprint: str = "",
) -> CommandCreated:
    """Check a command, then store it with one invocation per target host, all queued, in one transaction.

    1. A retry (same user and idempotency key within 24 h) gets the first command back.
    2. Check the permission, the action, its arguments, the targets, and for
       ``shell`` the separate permission and each host's enablement.
    3. Store the command, its invocations and their first transitions; release
       the first ``max_concurrency`` invocations to their agents; record the key.
    4. After commit: a ``command.updated`` event per invocation, and an
       ``invocation.available`` event waking each released host's long poll.
    """
    if idempotency_key and (
        replay := _idempotent_replay(user=user, key=idempotency_key, fingerprint=fingerprint, now=now)
    ):
        return replay
    if not user.has_perm(ADD_PERMISSION):
        raise CommandRefused("permission_denied", f"Sending commands needs the {ADD_PERMISSION} permission.", 403)
    spec = CATALOGUE.get(request.action)
    if spec is None:
        raise CommandRefused(
            "unknown_action", f"No action {request.action!r}; the catalogue has {', '.join(sorted(CATALOGUE))}."
        )
    args = spec.args_check(request.args)
    if isinstance(args, str):
        raise CommandRefused("invalid_args", f"args of {spec.name}: {args}")
    if spec.shell and not user.has_perm(SHELL_PERMISSION):
        raise CommandRefused("permission_denied", f"Shell commands need the {SHELL_PERMISSION} permission.", 403)
    hosts = _targets_resolve(request.targets)
    if spec.shell:
        enabled = set(
            ShellAccess.objects.filter(host__in=hosts, revoked_at__isnull=True).values_list("host_id", flat=True)
        )
        refused = [h.hostname for h in hosts if h.pk not in enabled]
        if refused:
            raise CommandRefused(
                "shell_not_enabled",
                f"Shell commands are not enabled on {_names(refused)}; an admin enables them per host.",
                403,
            )
    targets = {"hosts": [h.hostname for h in hosts]} if request.targets.hosts else {"rack": request.targets.rack}
    outbox = EventOutbox()
    try:
        with transaction.atomic():
            command = Command.objects.create(
                action=spec.name,
                args=args,
                targets=targets,
                comment=request.comment,
                issued_by=user if user.is_authenticated else None,
                issued_by_name=user.get_username(),
                issued_at=now,
                timeout_seconds=request.timeout_seconds,
                delivery_timeout_seconds=request.delivery_timeout_seconds,
                max_concurrency=request.max_concurrency,
                max_errors=request.max_errors,
            )
            # The first max_concurrency (in hostname order) are released to their agents at once.
            deliver_by = now + timedelta(seconds=command.delivery_timeout_seconds)
            invocations = Invocation.objects.bulk_create(
                [
                    Invocation(command=command, host=h, hostname=h.hostname, queued_at=now)
                    if i >= command.max_concurrency
                    else Invocation(
                        command=command,
                        host=h,
                        hostname=h.hostname,
                        queued_at=now,
                        released_at=now,
                        deliver_by=deliver_by,
                    )
                    for i, h in enumerate(hosts)
                ]
            )
            outbox.available.update(i.hostname for i in invocations if i.released_at is not None)
            InvocationTransition.objects.bulk_create(
                [
                    InvocationTransition(invocation=i, to_state=S.QUEUED, at=now, cause=Cause.CREATED)
                    for i in invocations
                ]
            )
            for invocation in invocations:
                invocation.command = command
                outbox.updates.append(command_update(invocation, at=now, known_command_state=CommandState.PENDING))
            if idempotency_key:
                IdempotencyKey.objects.filter(
                    user=user, key=idempotency_key, created_at__lt=now - IDEMPOTENCY_WINDOW
                ).delete()
                IdempotencyKey.objects.create(
                    user=user, key=idempotency_key, fingerprint=fingerprint, command=command, created_at=now
                )
            outbox.flush()
    except IntegrityError:
        # A concurrent request with the same key committed first: answer as it did.
        if idempotency_key and (
            replay := _idempotent_replay(user=user, key=idempotency_key, fingerprint=fingerprint, now=now)
        ):
            return replay
        raise
    return CommandCreated(command=command, created=True)


def _idempotent_replay(
    *, user: AbstractBaseUser | AnonymousUser, key: str, fingerprint: str, now: datetime
) -> CommandCreated | None:
    if not user.is_authenticated:
        return None
    record = (
        IdempotencyKey.objects.select_related("command")
        .filter(user=user, key=key, created_at__gte=now - IDEMPOTENCY_WINDOW)
        .first()
    )
    if record is None:
        return None
    if record.fingerprint != fingerprint:
        raise CommandRefused(
            "idempotency_key_reused",
            f"This Idempotency-Key was used in the last 24 h for another request (command {record.command_id}); "
            "use a new key for a new command.",
            422,
        )
    return CommandCreated(command=record.command, created=False)


def _names(names: list[str], most: int = 10) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def _targets_resolve(targets: Targets | None) -> list[Host]:
    """The hosts a command runs on, in hostname order: the named ones, or a rack's hosts that have an agent."""
    if targets is None or (not targets.hosts and not targets.rack):
        raise CommandRefused("no_targets", "Name the targets: {'hosts': [...]} or {'rack': '...'}.")
    if targets.hosts and targets.rack:
        raise CommandRefused("invalid_command", "Name either hosts or a rack as targets, not both.")
    if targets.rack:
        rack = Rack.objects.filter(name=targets.rack).first()
        if rack is None:
            raise CommandRefused("unknown_rack", f"No rack {targets.rack!r}.")
        hosts = list(Host.objects.filter(rack=rack, is_virtual=False).order_by("hostname"))
        if not hosts:
            raise CommandRefused("no_targets", f"Rack {rack.name} has no host with an agent.")
        return hosts
    names = list(dict.fromkeys(hostname_normalize(n) or n for n in targets.hosts or []))
    found = {h.hostname: h for h in Host.objects.filter(hostname__in=names)}
    unknown = [n for n in names if n not in found]
    if unknown:
        raise CommandRefused("unknown_host", f"No host {_names(unknown)}.")
    virtual = [n for n in names if found[n].is_virtual]
    if virtual:
        raise CommandRefused("unknown_host", f"{_names(virtual)}: a virtual node, without an agent to run commands.")
    return sorted(found.values(), key=lambda h: h.hostname)


def _invocations_release(*, command: Command, limit: int, now: datetime, outbox: EventOutbox) -> None:
    """Let go up to ``limit`` queued invocations of a locked command to their agents, in hostname order."""
    if limit <= 0:
        return
    waiting = list(
        Invocation.objects.select_for_update()
        .filter(command=command, state=S.QUEUED, released_at__isnull=True)
        .order_by("hostname")[:limit]
    )
    deliver_by = now + timedelta(seconds=command.delivery_timeout_seconds)
    for invocation in waiting:
        invocation.released_at, invocation.deliver_by = now, deliver_by
    Invocation.objects.bulk_update(waiting, ["released_at", "deliver_by"])
    outbox.available.update(i.hostname for i in waiting)


def _held_back(*, command_id: int) -> QuerySet[Invocation]:
    """A command's invocations rate control holds back: queued, not released. The set only ever shrinks."""
    return Invocation.objects.filter(command_id=command_id, state=S.QUEUED, released_at__isnull=True)


def _command_progress(*, command: Command, now: datetime, outbox: EventOutbox) -> None:
    """Rate control, after invocations of a locked command ended.

    Past ``max_errors`` errors, every invocation rate control still holds back
    (queued, not released) is cancelled; released ones are already on their
    way to their agents and run their course. Otherwise queued ones are
    released into the slots that freed up, so at most ``max_concurrency`` are
    released, dispatched or running at once.
    """
    held = _held_back(command_id=command.pk)
    if not held.exists():
        # Nothing held back (the common case for a command within max_concurrency): nothing to
        # release or cancel, and no need to count every invocation of a fleet at each report.
        return
    tally = Invocation.objects.filter(command=command).aggregate(
        errors=Count("id", filter=Q(state__in=ERROR_STATES)),
        in_flight=Count(
            "id", filter=Q(state__in=[S.DISPATCHED, S.RUNNING]) | Q(state=S.QUEUED, released_at__isnull=False)
        ),
    )
    errors, in_flight = tally["errors"], tally["in_flight"]
    if errors > command.max_errors:
        for invocation in held.select_for_update().order_by("id"):
            invocation.command = command
            invocation_transition(invocation=invocation, to=S.CANCELLED, cause=Cause.MAX_ERRORS, now=now, outbox=outbox)
        return
    if command.cancelled_at is None:
        _invocations_release(command=command, limit=command.max_concurrency - in_flight, now=now, outbox=outbox)


# --- Agents: hand out, acknowledge, report ---------------------------------------------------


def _deliverable(*, host_id: int, now: datetime) -> Q:
    # A dispatched invocation is handed out again until acknowledged (an answer may be lost),
    # unless its time is up and the deadline job is about to end it.
    return Q(host_id=host_id) & (
        Q(state=S.QUEUED, released_at__isnull=False) | Q(state=S.DISPATCHED, timeout_at__gt=now)
    )


def _deliverable_exists(*, host_id: int, now: datetime) -> bool:
    """``Invocation.objects.filter(_deliverable(...)).exists()`` in plain SQL (the same condition).

    It runs for every batch, and building the ORM query cost more than running
    it (a signed one-sample batch: about a tenth of its time in py-spy, issue 16).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {Invocation._meta.db_table} WHERE host_id = %s AND "
            "((state = %s AND released_at IS NOT NULL) OR (state = %s AND timeout_at > %s)) LIMIT 1",
            [host_id, S.QUEUED, S.DISPATCHED, now],
        )
        return cursor.fetchone() is not None


def invocations_dispatch(*, host_id: int, now: datetime, cause: str) -> list[AgentInvocation]:
    """Hand a host's agent its released invocations, moving queued ones to ``dispatched``.

    Invocations already dispatched but not acknowledged are handed out again:
    the answer that carried them may have been lost. Agents dedupe by command id.
    Costs one indexed query when there is nothing (it runs for every batch).
    """
    if not _deliverable_exists(host_id=host_id, now=now):
        return []
    outbox = EventOutbox()
    with transaction.atomic():
        invocations = list(
            Invocation.objects.select_for_update(of=("self",))
            .select_related("command")
            .filter(_deliverable(host_id=host_id, now=now))
            .order_by("id")
        )
        for invocation in invocations:
            if invocation.state == S.QUEUED:
                timeout_at = now + timedelta(seconds=invocation.command.timeout_seconds)
                invocation_transition(
                    invocation=invocation,
                    to=S.DISPATCHED,
                    cause=cause,
                    now=now,
                    outbox=outbox,
                    dispatched_at=now,
                    timeout_at=timeout_at,
                )
        outbox.flush()
    return [agent_invocation(i) for i in invocations]


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


# Numbers in an agent's data stay within 64 bits: PostgreSQL's jsonb writes a large float back as a
# whole number without exponent, which no 64-bit JSON encoder (the renderer's, the event layer's) can send.
JSON_NUMBER_MAX = 2**63


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
    if report.status == S.RUNNING and (
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


def invocation_report(*, host_id: int, command_id: int, report: ResultReport, now: datetime) -> Invocation:
    """Record what a host's agent says of its invocation: acknowledged (``running``), or its outcome.

    The same acknowledgement or outcome again changes nothing (a retry); any
    other report on an invocation that has ended is an ``InvalidTransition``.
    Only the target host finds its invocation: anyone else gets ``CommandNotFound``.
    """
    _report_check(report)
    found = Invocation.objects.filter(command_id=command_id, host_id=host_id).values_list("pk", flat=True).first()
    if found is None:
        raise CommandNotFound
    # Rate control needs the command's lock only while it holds invocations back. Once none is
    # held back none ever is again, so the reports of a fleet within its max_concurrency do not
    # queue behind each other on one row.
    rate_controlled = _held_back(command_id=command_id).exists()
    outbox = EventOutbox()
    with transaction.atomic():
        commands = Command.objects.select_for_update() if rate_controlled else Command.objects
        command = commands.get(pk=command_id)
        invocation = Invocation.objects.select_for_update().get(pk=found)
        invocation.command = command
        if report.status == S.RUNNING:
            if invocation.state != S.RUNNING:
                invocation_transition(
                    invocation=invocation,
                    to=S.RUNNING,
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
                _command_progress(command=command, now=now, outbox=outbox)
        outbox.flush()
    return invocation


# --- Operators: cancel -----------------------------------------------------------------------


def command_cancel(*, command_id: int, actor: str, now: datetime) -> Command:
    """Cancel every invocation of a command still queued, dispatched or running; ``InvalidTransition`` if none is.

    An agent that reports on a cancelled invocation is answered ``409`` with
    state ``cancelled``, which tells it to stop.
    """
    outbox = EventOutbox()
    with transaction.atomic():
        command = Command.objects.select_for_update().filter(pk=command_id).first()
        if command is None:
            raise CommandNotFound
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
                invocation=invocation, to=S.CANCELLED, cause=Cause.OPERATOR, now=now, outbox=outbox, actor=actor
            )
        outbox.flush()
    return command


# --- Deadlines and retention (jobs) ----------------------------------------------------------


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
            _command_progress(command=command, now=now, outbox=outbox)
            outbox.flush()
    return ended


def invocations_time_out(*, now: datetime) -> int:
    """End with ``timed_out`` every invocation dispatched more than its command's timeout ago."""
    return _deadlines_pass(
        due=Q(state__in=[S.DISPATCHED, S.RUNNING], timeout_at__lte=now), to=S.TIMED_OUT, cause=Cause.TIMEOUT, now=now
    )


def invocations_expire_undelivered(*, now: datetime) -> int:
    """End with ``undeliverable`` every released invocation its agent did not take before its delivery deadline."""
    return _deadlines_pass(
        due=Q(state=S.QUEUED, deliver_by__lte=now), to=S.UNDELIVERABLE, cause=Cause.DELIVERY_TIMEOUT, now=now
    )


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


# --- Shell enablement (admin) ----------------------------------------------------------------


def shell_enable(*, hosts: QuerySet[Host], actor: str, now: datetime) -> int:
    """Let shell commands run on these hosts (those not enabled yet), recording who and when."""
    with transaction.atomic():
        enabled = set(
            ShellAccess.objects.filter(host__in=hosts, revoked_at__isnull=True).values_list("host_id", flat=True)
        )
        grants = [
            ShellAccess(host=h, granted_by=actor, granted_at=now)
            for h in hosts.filter(is_virtual=False)
            if h.pk not in enabled
        ]
        ShellAccess.objects.bulk_create(grants)
    return len(grants)


def shell_disable(*, hosts: QuerySet[Host], actor: str, now: datetime) -> int:
    """Withdraw shell commands from these hosts, recording who and when (the grants stay as history)."""
    return ShellAccess.objects.filter(host__in=hosts, revoked_at__isnull=True).update(revoked_by=actor, revoked_at=now)
