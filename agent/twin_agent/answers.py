"""The server's answers, read as hostile input: each one checked against its shape before it is used.

A broken proxy, a half-upgraded server or an attacker in the middle can answer
anything: the wrong types (``"invocations": true``), ids beyond 64 bits,
numbers out of any sensible range (a heartbeat of 0 or 1e308), text with
newlines and terminal escapes. The agent has no schema library (it stays at
two dependencies), so each answer has a small explicit reader here that

- refuses (``AnswerError``, naming the field) what cannot be used at all:
  the caller backs off and tries again, as after an outage;
- bounds every number to the range the agent's own configuration allows;
- drops a field of the wrong shape, saying which, when the rest is usable.

docs/api.md is the shape; ``tests/agent/test_hostile_server.py`` drives the
readers with arbitrary answers.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from twin_agent.logs import text_safe

ID_MAX = 2**63 - 1  # the server's bigint, and what SQLite stores in an INTEGER
INTERVAL_RANGE = (0.1, 3600.0)  # as the configuration's ``interval``
HEARTBEAT_DEFAULT_SECONDS = 10.0  # when the registration answer gives none that is a number
INVOCATIONS_MAX = 100  # per answer; the rest are handed out again with a later one
ARGS_MAX_BYTES = 65536
JSON_DEPTH_MAX = 32
TOKEN_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")  # key ids, error codes, states: safe in a header and a log
TEXT_MAX = 1024


class AnswerError(ValueError):
    """The answer cannot be used; the message names the field and why."""


def number_bound(value: float, low: float, high: float) -> float:
    """``value`` within ``[low, high]`` (the caller has checked it is a finite number)."""
    return min(max(value, low), high)


def is_number(value: Any) -> bool:
    """A finite JSON number (``true`` is not one, nor NaN nor infinity, which Python's decoder accepts)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= ID_MAX


def json_depth(value: Any) -> int:
    """How deeply ``value`` nests (iteratively: a deep one must not exhaust the stack here either)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > JSON_DEPTH_MAX:
            return depth
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


def interval_bound(value: Any) -> float:
    """A heartbeat or interval in seconds, within ``INTERVAL_RANGE``; the default when it is not a number."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return HEARTBEAT_DEFAULT_SECONDS
    if not is_number(value):
        return HEARTBEAT_DEFAULT_SECONDS
    return number_bound(float(value), *INTERVAL_RANGE)


def _text(answer: dict[str, Any], name: str, *, max_length: int = TEXT_MAX, token: bool = False) -> str:
    value = answer.get(name)
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise AnswerError(f"{name}: a string of 1 to {max_length} characters is required")
    if token and not TOKEN_RE.match(value):
        raise AnswerError(f"{name}: letters, digits and _.:- only")
    if text_safe(value, limit=None) != value:
        raise AnswerError(f"{name}: control characters are not allowed")
    return value


@dataclass(frozen=True)
class Registration:
    """``POST /api/hosts/register``'s answer, as the credential needs it."""

    hostname: str
    key_id: str
    signing_secret: str
    heartbeat_seconds: float
    twin_id: str
    warnings: tuple[str, ...] = ()


def registration_read(raw: Any) -> Registration:
    """Check a registration answer; a heartbeat out of range is bounded (and said so in ``warnings``)."""
    if not isinstance(raw, dict):
        raise AnswerError("the answer is not a JSON object")
    warnings = []
    heartbeat = raw.get("heartbeatIntervalSeconds")
    bounded = interval_bound(heartbeat)
    if not is_number(heartbeat) or float(heartbeat) != bounded:
        warnings.append(
            f"heartbeatIntervalSeconds = {text_safe(repr(heartbeat), limit=40)} is not from "
            f"{INTERVAL_RANGE[0]:g} to {INTERVAL_RANGE[1]:g} s; using {bounded:g} s"
        )
    return Registration(
        hostname=_text(raw, "hostname", max_length=253),
        key_id=_text(raw, "keyId", token=True),
        signing_secret=_text(raw, "signingSecret", max_length=512),
        heartbeat_seconds=bounded,
        twin_id=_text(raw, "twinId", max_length=128),
        warnings=tuple(warnings),
    )


@dataclass(frozen=True)
class BatchAnswer:
    """A ``2xx`` answer to a batch. ``problems`` names the fields that were dropped for their shape."""

    accepted: int | None = None
    duplicate: bool = False
    rejected: list[tuple[int | None, str]] = field(default_factory=list)  # (index, reason)
    invocations: list[Any] = field(default_factory=list)
    problems: tuple[str, ...] = ()


def batch_answer_read(raw: Any, *, samples: int) -> BatchAnswer:
    """Check the answer to a batch of ``samples`` samples.

    Only a JSON object acknowledges a batch: anything else (a captive portal's
    page, an empty body) is an ``AnswerError``, and the batch is sent again
    (the server answers ``duplicate`` if it had stored it). Fields of the wrong
    shape are dropped and named in ``problems``.
    """
    if not isinstance(raw, dict):
        raise AnswerError("the answer to a batch is not a JSON object")
    problems = []
    accepted = raw.get("accepted")
    if accepted is not None and not (isinstance(accepted, int) and not isinstance(accepted, bool) and accepted >= 0):
        problems.append("accepted")
        accepted = None
    duplicate = raw.get("duplicate", False)
    if not isinstance(duplicate, bool):
        problems.append("duplicate")
        duplicate = False
    rejected: list[tuple[int | None, str]] = []
    raw_rejected = raw.get("rejected")
    if raw_rejected is not None:
        if (
            isinstance(raw_rejected, list)
            and len(raw_rejected) <= samples
            and all(isinstance(r, dict) for r in raw_rejected)
        ):
            for refusal in raw_rejected:
                index = refusal.get("index")
                index = (
                    index if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < samples else None
                )
                rejected.append((index, text_safe(refusal.get("reason", ""))))
        else:
            problems.append("rejected")
    invocations = raw.get("invocations")
    if invocations is None:
        invocations = []
    elif not isinstance(invocations, list):
        problems.append("invocations")
        invocations = []
    return BatchAnswer(
        accepted=accepted,
        duplicate=duplicate,
        rejected=rejected,
        invocations=invocations[:INVOCATIONS_MAX],
        problems=tuple(problems),
    )


def poll_answer_read(raw: Any) -> list[Any]:
    """The invocations of a long poll's ``200`` answer; an ``AnswerError`` when it has none of their shape."""
    if not isinstance(raw, dict) or not isinstance(raw.get("invocations", []), list):
        raise AnswerError("invocations: a list is required")
    return list(raw.get("invocations", []))[:INVOCATIONS_MAX]


def invocation_problem(raw: Any) -> str | None:
    """Why ``raw`` is not an invocation this agent can run (``None`` when it is one)."""
    if not isinstance(raw, dict):
        return "not a JSON object"
    if not is_id(raw.get("commandId")):
        return f"commandId: an integer from 1 to {ID_MAX} is required"
    action = raw.get("action")
    if not isinstance(action, str) or not TOKEN_RE.match(action):
        return "action: a short name is required"
    args = raw.get("args", {})
    if not isinstance(args, dict) or json_depth(args) > JSON_DEPTH_MAX:
        return f"args: an object nested at most {JSON_DEPTH_MAX} deep is required"
    if len(json.dumps(args)) > ARGS_MAX_BYTES:
        return f"args: at most {ARGS_MAX_BYTES} bytes"
    timeout = raw.get("timeoutSeconds", 60)
    if not is_number(timeout) or timeout <= 0:
        return "timeoutSeconds: a positive number is required"
    issued = raw.get("issuedAt")
    if issued is not None and (not isinstance(issued, str) or len(issued) > 64):
        return "issuedAt: a timestamp is required"
    return None


def error_code(raw: Any) -> str:
    """The ``error`` code of an error body, or ``""`` when it has none a log and a comparison can trust."""
    code = raw.get("error") if isinstance(raw, dict) else None
    return code if isinstance(code, str) and TOKEN_RE.match(code) else ""
