"""The command lifecycle's own Prometheus metric: invocations moving between states.

Every move of an invocation (its creation as ``queued`` included) leaves a
``command-update`` document in the transaction's ``EventOutbox``; when the outbox
is flushed, the moves are counted once the transaction commits, so a move rolled
back is never counted. docs/operations.md, "Reading the metrics", says how to read it.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable

from django.db import transaction
from prometheus_client import Counter

from commands.models import Cause, InvocationState
from commands.schema import CommandUpdate

INVOCATION_TRANSITIONS = Counter(
    "twin_command_invocation_transitions",
    "Invocations that entered a state, by state and cause (created, batch, poll, agent, operator, timeout, ...).",
    ["state", "cause"],
)
# The usual moves are exposed from the start at zero: rate() needs the series before the first command.
for _state, _cause in (
    (InvocationState.QUEUED, Cause.CREATED),
    (InvocationState.DISPATCHED, Cause.BATCH),
    (InvocationState.DISPATCHED, Cause.POLL),
    (InvocationState.RUNNING, Cause.AGENT),
    (InvocationState.SUCCEEDED, Cause.AGENT),
    (InvocationState.FAILED, Cause.AGENT),
    (InvocationState.TIMED_OUT, Cause.TIMEOUT),
    (InvocationState.CANCELLED, Cause.OPERATOR),
    (InvocationState.UNDELIVERABLE, Cause.DELIVERY_TIMEOUT),
):
    INVOCATION_TRANSITIONS.labels(_state, _cause)


def transitions_count_on_commit(updates: Iterable[CommandUpdate]) -> None:
    """Count the moves these ``command-update`` documents record, once the transaction commits."""
    moves = Tally((update["state"], update["cause"]) for update in updates)
    if moves:
        transaction.on_commit(lambda: _count(moves))


def _count(moves: Tally[tuple[str, str]]) -> None:
    for (state, cause), count in moves.items():
        INVOCATION_TRANSITIONS.labels(state, cause).inc(count)
