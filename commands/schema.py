"""Shapes of the command lifecycle's requests (msgspec Structs) and documents (TypedDicts), declared once.

Requests are snake_case, documents camelCase, times ISO-8601 UTC with ms and ``Z``
(``common.formats.iso_utc``). The OpenAPI schema is generated from these.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, NotRequired, TypedDict

import msgspec

from hosts.schema import Hostname, RackName

# Free text from operators: any character but NUL and the control characters other than tab and newlines.
FREE_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
TARGET_HOSTS_MAX = 10_000

DEFAULT_TIMEOUT_SECONDS = 60
TIMEOUT_SECONDS_MAX = 3600
DEFAULT_DELIVERY_TIMEOUT_SECONDS = 300
DELIVERY_TIMEOUT_SECONDS_MAX = 86_400
DEFAULT_MAX_CONCURRENCY = 50
MAX_CONCURRENCY_MAX = 10_000
DEFAULT_MAX_ERRORS = 0


class Targets(msgspec.Struct, forbid_unknown_fields=True):
    """Where a command runs: a list of hosts, or every host with an agent in a rack (one of the two)."""

    hosts: Annotated[list[Hostname], msgspec.Meta(max_length=TARGET_HOSTS_MAX)] | None = None
    rack: RackName | None = None


class CommandCreateRequest(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/commands``: an action of the catalogue, its arguments, its targets and limits."""

    action: Annotated[str, msgspec.Meta(max_length=64, description="A name from GET /api/commands/actions.")]
    targets: Targets | None = None
    args: dict[str, Any] = msgspec.field(default_factory=dict)
    timeout_seconds: Annotated[int, msgspec.Meta(ge=1, le=TIMEOUT_SECONDS_MAX)] = DEFAULT_TIMEOUT_SECONDS
    delivery_timeout_seconds: Annotated[int, msgspec.Meta(ge=1, le=DELIVERY_TIMEOUT_SECONDS_MAX)] = (
        DEFAULT_DELIVERY_TIMEOUT_SECONDS
    )
    max_concurrency: Annotated[int, msgspec.Meta(ge=1, le=MAX_CONCURRENCY_MAX)] = DEFAULT_MAX_CONCURRENCY
    max_errors: Annotated[int, msgspec.Meta(ge=0, le=TARGET_HOSTS_MAX)] = DEFAULT_MAX_ERRORS
    comment: Annotated[str, msgspec.Meta(max_length=1000, pattern=FREE_TEXT)] = ""


class ResultReport(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/commands/{id}/result``: an acknowledgement (``running``) or an outcome, from the target's agent."""

    status: Literal["running", "succeeded", "failed"]
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31 - 1)] | None = None
    output: str | None = None
    data: dict[str, Any] | None = None


# --- Documents -------------------------------------------------------------------------------


class TransitionDocument(TypedDict):
    """One move of an invocation: the state it entered, when, why (and the operator, for a cancel)."""

    state: str
    at: str
    cause: str
    by: NotRequired[str]


class InvocationDocument(TypedDict):
    """One host's invocation of a command, as operators see it."""

    commandId: int
    host: str
    state: str
    cause: str
    queuedAt: str
    releasedAt: str | None
    deliverBy: str | None
    dispatchedAt: str | None
    timeoutAt: str | None
    startedAt: str | None
    finishedAt: str | None
    agentStartedAt: str | None
    agentFinishedAt: str | None
    exitCode: int | None
    output: str
    outputTruncated: bool
    data: dict[str, Any] | None
    transitions: list[TransitionDocument]


class InvocationCounts(TypedDict):
    """How many of a command's invocations are in each state."""

    queued: int
    dispatched: int
    running: int
    succeeded: int
    failed: int
    timedOut: int
    cancelled: int
    undeliverable: int


class CommandDocument(TypedDict):
    """A command with its derived state and counts; ``invocations`` on ``GET /api/commands/{id}`` and creation."""

    id: int
    action: str
    args: dict[str, Any]
    targets: dict[str, Any]
    state: str
    issuedBy: str
    issuedAt: str
    comment: str
    timeoutSeconds: int
    deliveryTimeoutSeconds: int
    maxConcurrency: int
    maxErrors: int
    cancelledAt: str | None
    cancelledBy: str | None
    counts: InvocationCounts
    invocations: NotRequired[list[InvocationDocument]]


class CommandList(TypedDict):
    """A page of commands, newest first; ``next`` is the cursor of the following page (null on the last)."""

    commands: list[CommandDocument]
    next: str | None


class AgentInvocation(TypedDict):
    """An invocation as its agent receives it; the command id names it (one invocation per host and command)."""

    commandId: int
    action: str
    args: dict[str, Any]
    timeoutSeconds: int
    issuedAt: str


class PendingInvocations(TypedDict):
    """The long poll's answer: the invocations waiting for this agent (an empty list when the wait ended)."""

    invocations: list[AgentInvocation]


class CommandResult(TypedDict):
    """What an agent reported when an invocation finished."""

    exitCode: int | None
    output: str
    outputTruncated: bool
    data: dict[str, Any] | None


class CommandUpdate(TypedDict):
    """The payload of a ``command.updated`` event, pushed to staff readers as Socket.IO ``command-update``."""

    id: int
    host: str
    action: str
    state: str
    commandState: str
    cause: str
    at: str
    queuedAt: str
    dispatchedAt: str | None
    startedAt: str | None
    finishedAt: str | None
    result: NotRequired[CommandResult]


class ActionDocument(TypedDict):
    """One action of the catalogue, with the JSON Schema of its arguments."""

    name: str
    description: str
    argsSchema: dict[str, Any]
    permissions: list[str]
    requiresHostEnablement: bool


class ActionDefaults(TypedDict):
    timeoutSeconds: int
    deliveryTimeoutSeconds: int
    maxConcurrency: int
    maxErrors: int


class ActionCatalogue(TypedDict):
    """``GET /api/commands/actions``: what a command may name, and the defaults of its limits."""

    actions: list[ActionDocument]
    defaults: ActionDefaults


class InvalidTransition(TypedDict):
    """A ``409``: the move asked for is not allowed from the current state."""

    error: str
    detail: str
    state: str
