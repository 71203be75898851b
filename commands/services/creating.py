"""Creating a command: a check that may refuse, then a store that never does (Zulip's ``check_*`` and ``do_*``).

``command_check`` decides whether a command may be sent, and to which hosts:
the permissions, the catalogue and the action's arguments, the targets, and
for ``shell`` each host's grant. ``command_store`` writes what was checked: the
command, one invocation per host (the first ``max_concurrency`` released to
their agents) and their first transitions, and keeps the idempotency key.
``command_create`` runs the two, with the idempotent replay around them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db import IntegrityError, transaction

from commands.actions import CATALOGUE, SHELL_PERMISSION, ActionSpec
from commands.models import (
    Cause,
    Command,
    CommandState,
    IdempotencyKey,
    Invocation,
    InvocationState,
    InvocationTransition,
    ShellAccess,
)
from commands.schema import CommandCreateRequest, Targets
from commands.selectors import ADD_PERMISSION, command_update
from commands.services.lifecycle import CommandRefused, EventOutbox
from hosts.models import Host, Rack
from hosts.schema import hostname_normalize

# A retry within this window gets the first command back; the key is forgotten after it.
IDEMPOTENCY_WINDOW = timedelta(hours=24)

User = AbstractBaseUser | AnonymousUser


@dataclass(frozen=True)
class CommandCreated:
    """A command, and whether this request created it (False: an earlier request with the same idempotency key)."""

    command: Command
    created: bool


@dataclass(frozen=True)
class CheckedCommand:
    """A command that passed every check: the action, its checked arguments and the hosts it runs on."""

    spec: ActionSpec
    args: dict[str, Any]
    hosts: list[Host]
    # The targets as the operator named them: the hosts (normalised, found) or the rack.
    targets: dict[str, Any]


def request_fingerprint(body: bytes) -> str:
    """What tells a retried create from another request reusing its idempotency key."""
    return hashlib.sha256(body).hexdigest()


def command_create(
    *,
    user: User,
    request: CommandCreateRequest,
    now: datetime,
    idempotency_key: str | None = None,
    fingerprint: str = "",
) -> CommandCreated:
    """Check a command, then store it with one invocation per target host, all queued, in one transaction.

    1. A retry (same user and idempotency key within 24 h) gets the first command back.
    2. ``command_check``: the permission, the action, its arguments, the targets,
       and for ``shell`` the separate permission and each host's grant.
    3. ``command_store``: the command, its invocations and their first
       transitions; the first ``max_concurrency`` invocations released to their
       agents; the key recorded.
    4. After commit: a ``command.updated`` event per invocation, and an
       ``invocation.available`` event waking each released host's long poll.
    """
    if idempotency_key and (replay := command_replay(user=user, key=idempotency_key, fingerprint=fingerprint, now=now)):
        return replay
    checked = command_check(user=user, request=request)
    try:
        command = command_store(
            checked=checked,
            user=user,
            request=request,
            now=now,
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
        )
    except IntegrityError:
        # A concurrent request with the same key committed first: answer as it did.
        if idempotency_key and (
            replay := command_replay(user=user, key=idempotency_key, fingerprint=fingerprint, now=now)
        ):
            return replay
        raise
    return CommandCreated(command=command, created=True)


def command_replay(*, user: User, key: str, fingerprint: str, now: datetime) -> CommandCreated | None:
    """The command an earlier request with this user's key created, if any; refused if the request differs."""
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
            status=422,
        )
    return CommandCreated(command=record.command, created=False)


def command_check(*, user: User, request: CommandCreateRequest) -> CheckedCommand:
    """What may be sent and to which hosts, or a ``CommandRefused`` saying why not. Writes nothing."""
    if not user.has_perm(ADD_PERMISSION):
        raise CommandRefused(
            "permission_denied", f"Sending commands needs the {ADD_PERMISSION} permission.", status=403
        )
    spec = CATALOGUE.get(request.action)
    if spec is None:
        raise CommandRefused(
            "unknown_action", f"No action {request.action!r}; the catalogue has {', '.join(sorted(CATALOGUE))}."
        )
    args = spec.args_check(request.args)
    if isinstance(args, str):
        raise CommandRefused("invalid_args", f"args of {spec.name}: {args}")
    if spec.shell and not user.has_perm(SHELL_PERMISSION):
        raise CommandRefused("permission_denied", f"Shell commands need the {SHELL_PERMISSION} permission.", status=403)
    hosts = _targets_resolve(request.targets)
    if spec.shell:
        enabled = set(ShellAccess.objects.active().filter(host__in=hosts).values_list("host_id", flat=True))
        refused = [h.hostname for h in hosts if h.pk not in enabled]
        if refused:
            raise CommandRefused(
                "shell_not_enabled",
                f"Shell commands are not enabled on {_names(refused)}; an admin enables them per host.",
                status=403,
            )
    targets = {"hosts": [h.hostname for h in hosts]} if request.targets.hosts else {"rack": request.targets.rack}
    return CheckedCommand(spec=spec, args=args, hosts=hosts, targets=targets)


def command_store(
    *,
    checked: CheckedCommand,
    user: User,
    request: CommandCreateRequest,
    now: datetime,
    idempotency_key: str | None,
    fingerprint: str,
) -> Command:
    """Store a checked command, fanned out into one queued invocation per host, in one transaction. Never refuses.

    The first ``max_concurrency`` invocations (in hostname order) are released
    to their agents at once. An ``IntegrityError`` means a concurrent request
    recorded the same idempotency key first (``command_create`` answers as it did).
    """
    outbox = EventOutbox()
    with transaction.atomic():
        command = Command.objects.create(
            action=checked.spec.name,
            args=checked.args,
            targets=checked.targets,
            comment=request.comment,
            issued_by=user if user.is_authenticated else None,
            issued_by_name=user.get_username(),
            issued_at=now,
            timeout_seconds=request.timeout_seconds,
            delivery_timeout_seconds=request.delivery_timeout_seconds,
            max_concurrency=request.max_concurrency,
            max_errors=request.max_errors,
        )
        deliver_by = now + timedelta(seconds=command.delivery_timeout_seconds)
        invocations = Invocation.objects.bulk_create(
            [
                Invocation(command=command, host=h, hostname=h.hostname, queued_at=now)
                if i >= command.max_concurrency
                else Invocation(
                    command=command, host=h, hostname=h.hostname, queued_at=now, released_at=now, deliver_by=deliver_by
                )
                for i, h in enumerate(checked.hosts)
            ]
        )
        outbox.available.update(i.hostname for i in invocations if i.released_at is not None)
        InvocationTransition.objects.bulk_create(
            [
                InvocationTransition(invocation=i, to_state=InvocationState.QUEUED, at=now, cause=Cause.CREATED)
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
    return command


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
