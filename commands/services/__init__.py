"""Writes of the command lifecycle, one module per part; the names other code calls are here.

- ``lifecycle``: the refusals, the event outbox, ``invocation_transition`` (every
  state change goes through it) and rate control;
- ``creating``: ``command_check`` (may refuse), then ``command_store`` (never
  refuses): fan-out, release, idempotency keys;
- ``delivery``: handing invocations to agents (a batch answer, the long poll),
  acknowledgements and results;
- ``cancelling``: an operator's cancel;
- ``deadlines`` and ``retention``: what the jobs end and prune;
- ``shell``: the admin's audited shell switch.

Every writer takes its locks in the one order ``lifecycle`` states.
"""

from commands.services.cancelling import command_cancel
from commands.services.creating import CommandCreated, command_create, request_fingerprint
from commands.services.deadlines import invocations_expire_undelivered, invocations_time_out
from commands.services.delivery import invocation_report, invocations_dispatch, output_truncate
from commands.services.lifecycle import (
    CommandNotFound,
    CommandRefused,
    EventOutbox,
    InvalidTransition,
    invocation_transition,
)
from commands.services.retention import commands_prune
from commands.services.shell import shell_disable, shell_enable

__all__ = [
    "CommandCreated",
    "CommandNotFound",
    "CommandRefused",
    "EventOutbox",
    "InvalidTransition",
    "command_cancel",
    "command_create",
    "commands_prune",
    "invocation_report",
    "invocation_transition",
    "invocations_dispatch",
    "invocations_expire_undelivered",
    "invocations_time_out",
    "output_truncate",
    "request_fingerprint",
    "shell_disable",
    "shell_enable",
]
