"""Commands from the twin, the agent's side of the command lifecycle.

Written against the agreed protocol (/work/briefs/commands-protocol.md, the
server is issue 11) and kept in this one module, so the agent follows the
server's details by changing only this file:

- invocations arrive in the answer to a batch (``"invocations": [...]``) and
  by long poll (``GET /api/commands/pending?wait=25``, signed over
  ``"GET " + path``); they are deduplicated by ``commandId`` in the spool's
  database, so one handed out twice (its answer was lost), or again after a
  restart, runs once;
- each is acknowledged (``running``), run only if its action is in the local
  allow-list (refused as ``failed`` otherwise), and its result posted to
  ``/api/commands/{id}/result``; a result that could not be posted stays in
  the database and is posted again, after a restart too;
- a ``409`` or ``404`` to the acknowledgement means the server no longer wants
  it run (cancelled, timed out): it is not run.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from twin_agent import __version__
from twin_agent.answers import AnswerError, error_code, invocation_problem, poll_answer_read
from twin_agent.formats import iso_utc, utc_now
from twin_agent.logs import OnceLog, text_safe
from twin_agent.protocol import SignedClient
from twin_agent.spool import Spool
from twin_agent.transport import TransportError

CATALOGUE = ("ping", "collect-now", "set-interval", "restart-agent", "shell")
# Shell is never allowed by default: an admin enables it on the server per host, and the
# host's owner must also list it in the agent's own configuration.
DEFAULT_ALLOW = ("ping", "collect-now", "set-interval", "restart-agent")
PENDING_PATH = "/api/commands/pending"
RESULT_PATH = "/api/commands/{command_id}/result"
OUTPUT_MAX_BYTES = 65536
INTERVAL_RANGE = (1, 3600)
DEFAULT_TIMEOUT_SECONDS = 60.0
EXIT_TIMED_OUT = 124  # as coreutils' timeout(1)

SCHEMA = """
CREATE TABLE IF NOT EXISTS invocations (
    stream TEXT NOT NULL,
    command_id INTEGER NOT NULL,
    invocation TEXT NOT NULL,              -- as received, JSON
    state TEXT NOT NULL,                   -- queued, running, finished (result not yet posted), reported
    acknowledged INTEGER NOT NULL DEFAULT 0,
    started_at TEXT,
    result TEXT,                           -- the result body, JSON
    updated_at REAL NOT NULL,
    PRIMARY KEY (stream, command_id)
);
CREATE INDEX IF NOT EXISTS invocations_state ON invocations (stream, state, command_id);
"""
# Reported invocations are kept this long to recognise one handed out again.
KEEP_REPORTED_SECONDS = 7 * 86400


@dataclass(frozen=True)
class Invocation:
    """One command for this host, as the server hands it out."""

    command_id: int
    action: str
    args: dict[str, Any]
    timeout_seconds: float
    issued_at: str | None = None

    @classmethod
    def from_wire(cls, raw: Any) -> Invocation | None:
        """Read ``{"commandId", "action", "args", "timeoutSeconds", "issuedAt"}``; None when malformed
        (``answers.invocation_problem`` says why)."""
        if invocation_problem(raw) is not None:
            return None
        timeout = raw.get("timeoutSeconds", DEFAULT_TIMEOUT_SECONDS)
        return cls(raw["commandId"], raw["action"], raw.get("args", {}), float(timeout), raw.get("issuedAt"))


@dataclass(frozen=True)
class Outcome:
    """How a command ended. ``restart`` asks for the agent's restart once the result is posted."""

    status: str  # "succeeded" or "failed"
    exit_code: int
    output: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    restart: bool = False

    @classmethod
    def ok(cls, data: dict[str, Any] | None = None, output: str = "") -> Outcome:
        return cls("succeeded", 0, output, data or {})

    @classmethod
    def failed(cls, output: str, data: dict[str, Any] | None = None) -> Outcome:
        return cls("failed", 1, output, data or {})


class HostActions(Protocol):
    """What the agent (or a simulated host) lets commands do to it."""

    def collect_now(self) -> int:
        """Collect and send a sample at once; return the sequence of the batch that carried it."""
        ...

    def set_interval(self, seconds: int) -> None: ...

    def restart(self) -> None:
        """Flush and restart (called after the result was posted, or kept to post)."""
        ...


def output_truncate(raw: bytes, *, total: int | None = None) -> str:
    """At most ``OUTPUT_MAX_BYTES`` of output, with the server's marker when cut."""
    total = len(raw) if total is None else total
    if total <= OUTPUT_MAX_BYTES:
        return raw.decode(errors="replace")
    text = raw[:OUTPUT_MAX_BYTES].decode(errors="ignore")
    return text + f"\n…[truncated {total - OUTPUT_MAX_BYTES} bytes]"


class Executor:
    """Runs the catalogue's actions on a host. The simulator overrides ``shell``."""

    def __init__(self, *, host: HostActions, shell_timeout_max: float = 300.0) -> None:
        self.host = host
        self.shell_timeout_max = shell_timeout_max

    def execute(self, invocation: Invocation) -> Outcome:
        action, args = invocation.action, invocation.args
        if action == "ping":
            agent_time = iso_utc(utc_now())
            # The output repeats the data: the dashboard's command panel shows a result's output.
            return Outcome.ok(
                {"agentTime": agent_time, "agentVersion": __version__},
                output=f"pong: twin-agent {__version__}, agent time {agent_time}\n",
            )
        if action == "collect-now":
            return Outcome.ok({"sequence": self.host.collect_now()})
        if action == "set-interval":
            seconds = args.get("seconds")
            low, high = INTERVAL_RANGE
            if not isinstance(seconds, int) or isinstance(seconds, bool) or not low <= seconds <= high:
                return Outcome.failed(f"invalid args: seconds must be an integer from {low} to {high}")
            self.host.set_interval(seconds)
            return Outcome.ok({"intervalSeconds": seconds})
        if action == "restart-agent":
            return Outcome("succeeded", 0, "restarting", {}, restart=True)
        if action == "shell":
            command = args.get("command")
            if not isinstance(command, str) or not command.strip():
                return Outcome.failed("invalid args: command must be a non-empty string")
            return self.shell(command, timeout=min(invocation.timeout_seconds, self.shell_timeout_max))
        return Outcome.failed(f"unknown action '{action}'")

    def shell(self, command: str, *, timeout: float) -> Outcome:
        """Run ``command`` with ``/bin/sh -c`` in a session of its own; kill the whole group at the timeout.

        Output (stdout and stderr together) goes to a temporary file, so a
        command that prints gigabytes costs disk, not the agent's memory; only
        the first ``OUTPUT_MAX_BYTES`` are read back.
        """
        with tempfile.TemporaryFile() as sink:
            process = subprocess.Popen(
                ["/bin/sh", "-c", command],
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                code = process.wait(timeout=timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                code, timed_out = EXIT_TIMED_OUT, True
            total = sink.tell()
            sink.seek(0)
            output = output_truncate(sink.read(OUTPUT_MAX_BYTES), total=total)
        if code < 0:  # killed by a signal: report it as a shell would
            code = 128 - code
        if timed_out:
            return Outcome("failed", code, output + f"\n[killed after {timeout:g} s]", {"timedOut": True})
        return Outcome("succeeded" if code == 0 else "failed", code, output)


class CommandRunner:
    """Receives a host's invocations, runs the allowed ones, and posts their results."""

    def __init__(
        self,
        *,
        client: SignedClient,
        spool: Spool,
        executor: Executor,
        allow: Iterable[str] = DEFAULT_ALLOW,
        log: logging.Logger | None = None,
        on_restart: Callable[[], None] | None = None,
    ) -> None:
        self.client = client
        self.spool = spool
        self.stream = client.credential.hostname
        self.executor = executor
        self.allow = frozenset(allow)
        self.log = log or logging.getLogger("twin_agent.commands")
        self.once = OnceLog(self.log)
        self.on_restart = on_restart
        self.executed = 0
        spool.schema_ensure(SCHEMA)
        with spool.transaction() as db:
            # A process that died while running a command cannot know how it ended: say so, never run it again.
            interrupted = {
                "status": "failed",
                "exit_code": 1,
                "output": "the agent stopped while this command ran; it was not run again",
                "data": {"interrupted": True},
                "finished_at": iso_utc(utc_now()),
            }
            db.execute(
                "UPDATE invocations SET state = 'finished', result = ?, updated_at = ? "
                "WHERE stream = ? AND state = 'running'",
                (json.dumps(interrupted), time.time(), self.stream),
            )
            db.execute(
                "DELETE FROM invocations WHERE stream = ? AND state = 'reported' AND updated_at < ?",
                (self.stream, time.time() - KEEP_REPORTED_SECONDS),
            )

    def offer(self, raw_invocations: list[Any]) -> int:
        """Take invocations from a batch answer or the long poll; return how many are new."""
        new = 0
        if not isinstance(raw_invocations, list):
            self.once.warning(
                "invocations", "ignored invocations that are not a list: %s", text_safe(repr(raw_invocations))
            )
            return 0
        for raw in raw_invocations:
            invocation = Invocation.from_wire(raw)
            if invocation is None:
                problem = invocation_problem(raw)
                self.once.warning(
                    f"invocation:{problem}", "ignored a malformed invocation (%s): %s", problem, text_safe(repr(raw))
                )
                continue
            with self.spool.transaction() as db:
                new += db.execute(
                    "INSERT OR IGNORE INTO invocations (stream, command_id, invocation, state, updated_at) "
                    "VALUES (?, ?, ?, 'queued', ?)",
                    (self.stream, invocation.command_id, json.dumps(asdict(invocation)), time.time()),
                ).rowcount
        return new

    def has_work(self) -> bool:
        rows = self.spool.read(
            "SELECT 1 FROM invocations WHERE stream = ? AND state IN ('queued', 'finished') LIMIT 1", (self.stream,)
        )
        return bool(rows)

    def run_queued(self) -> int:
        """Run every queued invocation in order, then post results still unsent; return how many ran."""
        ran = 0
        while True:
            rows = self.spool.read(
                "SELECT invocation FROM invocations WHERE stream = ? AND state = 'queued' ORDER BY command_id LIMIT 1",
                (self.stream,),
            )
            if not rows:
                break
            self._run(Invocation(**json.loads(rows[0][0])))
            ran += 1
        self.report_unsent()
        return ran

    def _run(self, invocation: Invocation) -> None:
        """Acknowledge, run (if allowed), store the result, post it; restart last if asked."""
        started_at = iso_utc(utc_now())
        answer = self._post(invocation.command_id, {"status": "running", "started_at": started_at})
        if answer == "gone":
            self._state(invocation.command_id, "reported")
            return
        with self.spool.transaction() as db:
            db.execute(
                "UPDATE invocations SET state = 'running', acknowledged = ?, started_at = ?, updated_at = ? "
                "WHERE stream = ? AND command_id = ?",
                (answer == "ok", started_at, time.time(), self.stream, invocation.command_id),
            )
        outcome = self._outcome(invocation)
        result = {
            "status": outcome.status,
            "exit_code": outcome.exit_code,
            "output": outcome.output,
            "data": outcome.data,
            "started_at": started_at,
            "finished_at": iso_utc(utc_now()),
        }
        with self.spool.transaction() as db:
            db.execute(
                "UPDATE invocations SET state = 'finished', result = ?, updated_at = ? "
                "WHERE stream = ? AND command_id = ?",
                (json.dumps(result), time.time(), self.stream, invocation.command_id),
            )
        self.executed += 1
        self.log.info(
            "command %d (%s) %s",
            invocation.command_id,
            invocation.action,
            outcome.status,
            extra={"fields": {"exit_code": outcome.exit_code}},
        )
        self.report_unsent()
        if outcome.restart and self.on_restart is not None:
            self.on_restart()

    def _outcome(self, invocation: Invocation) -> Outcome:
        if invocation.action not in self.allow:
            why = "not in this agent's allow-list" if invocation.action in CATALOGUE else "unknown to this agent"
            self.log.warning("refused command %d: '%s' is %s", invocation.command_id, invocation.action, why)
            return Outcome.failed(
                f"refused: '{invocation.action}' is {why} (allowed: {', '.join(sorted(self.allow)) or 'nothing'})",
                {"refused": "not_allowed"},
            )
        try:
            return self.executor.execute(invocation)
        except Exception as exc:  # a failing command must not take the agent down
            self.log.exception("command %d (%s) raised", invocation.command_id, invocation.action)
            return Outcome.failed(f"the agent failed to run it: {type(exc).__name__}: {exc}")

    def report_unsent(self) -> int:
        """Post results the server has not acknowledged yet (after an outage or a restart)."""
        posted = 0
        rows = self.spool.read(
            "SELECT command_id, acknowledged, started_at, result FROM invocations "
            "WHERE stream = ? AND state = 'finished' ORDER BY command_id",
            (self.stream,),
        )
        for command_id, acknowledged, started_at, result in rows:
            body = json.loads(result)
            body.setdefault("started_at", started_at or body["finished_at"])
            if not acknowledged:
                # The server only moves an invocation to a result through running.
                answer = self._post(command_id, {"status": "running", "started_at": body["started_at"]})
                if answer == "retry":
                    break
            answer = self._post(command_id, body)
            if answer == "retry":
                break
            self._state(command_id, "reported")
            posted += 1
        return posted

    def _post(self, command_id: int, body: dict[str, Any]) -> str:
        """POST to the result endpoint: ``ok``, ``gone`` (409/404: the server is done with it) or ``retry``."""
        path = RESULT_PATH.format(command_id=command_id)
        try:
            reply = self.client.post(path, json.dumps(body).encode())
        except TransportError as exc:
            self.log.warning("could not post command %d's %s (%s); will retry", command_id, body["status"], exc)
            return "retry"
        if 200 <= reply.status < 300:
            return "ok"
        if reply.status in (404, 409):
            decoded = reply.json()
            state = error_code({"error": decoded.get("state")}) if isinstance(decoded, dict) else None
            self.log.info(
                "command %d: the server answered %d %s (%s)%s",
                command_id,
                reply.status,
                reply.error,
                reply.detail,
                f", it is {state}" if state else "",
            )
            return "gone"
        self.log.warning(
            "command %d's %s answered %d: %s; will retry", command_id, body["status"], reply.status, reply.detail
        )
        return "retry"

    def _state(self, command_id: int, state: str) -> None:
        with self.spool.transaction() as db:
            db.execute(
                "UPDATE invocations SET state = ?, updated_at = ? WHERE stream = ? AND command_id = ?",
                (state, time.time(), self.stream, command_id),
            )

    def poll(self, *, wait: int = 25) -> str:
        """One long poll: ``ok`` (invocations offered, maybe none), ``unsupported`` (no such endpoint) or ``error``."""
        try:
            reply = self.client.get(f"{PENDING_PATH}?wait={wait}", timeout=wait + 10)
        except TransportError:
            return "error"
        if reply.status == 200:
            try:
                invocations = poll_answer_read(reply.json())
            except AnswerError as exc:
                self.once.warning("poll", "the long poll's answer is not the protocol's (%s); will poll again", exc)
                return "error"
            self.offer(invocations)
            return "ok"
        if reply.status in (404, 405):
            return "unsupported"
        return "error"
