"""Background jobs of the command lifecycle: deadlines pass with nobody asking; old commands go."""

from __future__ import annotations

from datetime import datetime

from commands.services import commands_prune, invocations_expire_undelivered, invocations_time_out
from jobs.registry import job


@job(name="commands.deadlines", every_seconds=1.0)
def commands_deadlines(now: datetime) -> str:
    """End invocations past their delivery deadline (``undeliverable``) or their timeout (``timed_out``)."""
    undeliverable = invocations_expire_undelivered(now=now)
    timed_out = invocations_time_out(now=now)
    return f"{timed_out} timed out, {undeliverable} undeliverable"


@job(name="commands.retention", every_seconds=3600.0)
def commands_retention(now: datetime) -> str:
    """Remove finished commands older than TWIN_COMMAND_RETENTION_DAYS."""
    return f"{commands_prune(now=now)} finished command(s) removed"
