"""The wire protocol of docs/api.md: registration, and signed, numbered batches from the spool.

One implementation serves the agent and the fleet simulator: ``Uplink.flush``
sends a stream's spooled batches and decides, from each answer, whether the
batch is done, must be retried later, split, or whether the agent must stop.
It never sleeps: it sets ``retry_at``, and its caller waits (the agent on a
thread, the simulator in its schedule).
"""

from __future__ import annotations

import gzip
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twin_agent.answers import AnswerError, BatchAnswer, batch_answer_read, registration_read
from twin_agent.backoff import Backoff
from twin_agent.formats import iso_utc, utc_now
from twin_agent.logs import OnceLog
from twin_agent.signing import get_signed_bytes, signed_headers
from twin_agent.spool import Batch, Spool
from twin_agent.state import Credential
from twin_agent.transport import Http, Reply, TransportError

REGISTER_PATH = "/api/hosts/register"
BATCH_PATH = "/api/metrics/batch"
HEALTH_PATH = "/api/health"
# Bodies larger than this are sent gzip-compressed (the signature covers the compressed bytes).
GZIP_ABOVE_BYTES = 16 * 1024
# The 401s of docs/api.md that mean this credential will never be accepted again. Any other
# 401 (a clock problem, a proxy's own page, a code this agent does not know) is retried: a
# broken answer must not end the agent.
FINAL_401 = {"unknown_key", "bad_signature", "revoked", "incomplete_signature", "bad_timestamp"}


class AgentStopped(Exception):
    """The server will never accept this credential again: stop, and say how to enroll again."""


class EnrollmentRefused(Exception):
    """The server refused the registration; ``code`` and ``detail`` are its answer."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


def reenroll_hint(*, server: str, state_dir: str | None = None) -> str:
    where = f" --state-dir {state_dir}" if state_dir else ""
    return (
        f"Enroll this host again: 'twin-agent enroll --server {server} --enrollment-key KEY{where}'; "
        "samples waiting in the spool are kept and sent once it is enrolled."
    )


def host_register(
    *,
    http: Http,
    enrollment_key: str,
    hostname: str,
    platform: str,
    agent_version: str,
    display_name: str | None = None,
    ip: str | None = None,
    rack: str | None = None,
    position: dict[str, float] | None = None,
    log: logging.Logger | None = None,
) -> Credential:
    """Register the host (``POST /api/hosts/register``) and return its new credential.

    An answer that is not a registration is an ``EnrollmentRefused`` with code
    ``bad_answer``; a heartbeat out of the range the agent allows is bounded, with a warning.
    """
    request: dict[str, Any] = {"hostname": hostname, "platform": platform, "agent_version": agent_version}
    optional = {"display_name": display_name, "ip": ip, "rack": rack, "position": position}
    request.update({name: value for name, value in optional.items() if value is not None})
    reply = http.request(
        "POST",
        REGISTER_PATH,
        body=json.dumps(request).encode(),
        headers={"Authorization": f"Bearer {enrollment_key}", "Content-Type": "application/json"},
    )
    if reply.status not in (200, 201):
        raise EnrollmentRefused(reply.error or f"http_{reply.status}", reply.detail)
    try:
        answer = registration_read(reply.json())
    except AnswerError as exc:
        raise EnrollmentRefused("bad_answer", f"the server's answer is not a registration ({exc})") from None
    for warning in answer.warnings:
        (log or logging.getLogger("twin_agent")).warning("registration: %s", warning)
    return Credential(
        server=http.base_url,
        hostname=answer.hostname,
        key_id=answer.key_id,
        signing_secret=answer.signing_secret,
        heartbeat_seconds=answer.heartbeat_seconds,
        twin_id=answer.twin_id,
        enrolled_at=iso_utc(utc_now()),
    )


def server_wait(*, http: Http, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``GET /api/health`` to answer 200."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if http.request("GET", HEALTH_PATH, timeout=2).status == 200:
                return True
        except TransportError:
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)


class SignedClient:
    """Requests signed with the host's credential (docs/api.md, section 3)."""

    def __init__(self, *, http: Http, credential: Credential, clock: Callable[[], float] = time.time) -> None:
        self.http = http
        self.credential = credential
        self.clock = clock

    def post(self, path: str, body: bytes, *, timeout: float | None = None, compress: bool = False) -> Reply:
        """POST ``body`` signed; ``compress`` gzips a large one (the batch endpoint inflates it)."""
        headers = {"Content-Type": "application/json"}
        if compress and len(body) > GZIP_ABOVE_BYTES:
            body = gzip.compress(body, compresslevel=6)
            headers["Content-Encoding"] = "gzip"
        headers.update(self._signature(body))
        return self.http.request("POST", path, body=body, headers=headers, timeout=timeout)

    def get(self, path_with_query: str, *, timeout: float | None = None) -> Reply:
        headers = self._signature(get_signed_bytes(path_with_query))
        return self.http.request("GET", path_with_query, headers=headers, timeout=timeout)

    def _signature(self, signed: bytes) -> dict[str, str]:
        return signed_headers(
            key_id=self.credential.key_id, secret=self.credential.signing_secret, signed=signed, now=self.clock()
        )


@dataclass
class FlushReport:
    """What one ``Uplink.flush`` did."""

    acknowledged: list[Batch] = field(default_factory=list)
    samples: int = 0
    failure: str | None = None  # why a try failed; the next one is at ``Uplink.retry_at``
    waiting: bool = False  # nothing tried: a backoff was running

    @property
    def batches(self) -> int:
        return len(self.acknowledged)

    def sequence_of(self, sample_id: int) -> int | None:
        """The sequence of the acknowledged batch that carried spool sample ``sample_id``."""
        for batch in self.acknowledged:
            if batch.first_id <= sample_id <= batch.last_id:
                return batch.sequence
        return None


class Uplink:
    """A stream's path to the server: signed batches out of the spool, answers read and acted on."""

    def __init__(
        self,
        *,
        client: SignedClient,
        spool: Spool,
        session: str,
        batch_max_samples: int = 500,
        backoff: Backoff | None = None,
        log: logging.Logger | None = None,
        on_invocations: Callable[[list[dict[str, Any]]], None] | None = None,
        on_acknowledged: Callable[[Batch], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        state_dir: str | None = None,
    ) -> None:
        self.client = client
        self.state_dir = state_dir  # named in the "enroll again" hint
        self.spool = spool
        self.stream = client.credential.hostname
        self.session = session
        self.batch_max_samples = batch_max_samples
        self.backoff = backoff or Backoff()
        self.log = log or logging.getLogger("twin_agent.uplink")
        self.once = OnceLog(self.log)
        self.on_invocations = on_invocations
        self.on_acknowledged = on_acknowledged
        self.monotonic = monotonic
        self.retry_at = 0.0
        self.last_error: str | None = None
        self.stopped: str | None = None
        self._lock = threading.Lock()

    def waiting(self) -> float:
        """Seconds until the next try is allowed (0 when it may go now)."""
        return max(0.0, self.retry_at - self.monotonic())

    def flush(self, *, max_batches: int | None = None, force: bool = False) -> FlushReport:
        """Send waiting batches, oldest first, until the spool is empty or a try fails.

        Waits for nothing: while a backoff runs it returns at once (unless
        ``force``, for ``collect-now``). Raises ``AgentStopped`` when the
        server refuses the credential for good.
        """
        with self._lock:
            if self.stopped:
                raise AgentStopped(self.stopped)
            report = FlushReport()
            if not force and self.waiting() > 0:
                report.waiting = True
                return report
            while max_batches is None or report.batches < max_batches:
                batch = self.spool.batch_next(
                    stream=self.stream, session=self.session, max_samples=self.batch_max_samples
                )
                if batch is None or not self._send(batch, report):
                    break
            return report

    def _send(self, batch: Batch, report: FlushReport) -> bool:
        """Send one batch and act on the answer; return whether to go on with the next."""
        try:
            reply = self.client.post(BATCH_PATH, batch.body, compress=True)
        except TransportError as exc:
            return self._retry(f"server unreachable ({exc})", report=report)
        code = reply.error
        if 200 <= reply.status < 300 or (reply.status == 400 and code == "no_valid_samples"):
            # (400 no_valid_samples: every sample was refused one by one; the answer lists why, as a 202's would.)
            try:
                answer = batch_answer_read(reply.json(), samples=batch.samples)
            except AnswerError as exc:
                return self._retry(f"the server answered {reply.status} but {exc}", report=report, kind="bad-answer")
            self._acknowledged(batch, answer, report)
            return True
        if reply.status == 401 and code in FINAL_401:
            self.stopped = (
                f"The server refused this host's credential ({code or reply.status}: {reply.detail}). "
                + reenroll_hint(server=self.client.http.base_url, state_dir=self.state_dir)
            )
            self.log.error(self.stopped)
            raise AgentStopped(self.stopped)
        if reply.status == 401 and code == "stale_timestamp":
            return self._retry(f"the server's clock and ours differ ({reply.detail}); check NTP", report=report)
        if reply.status == 403 and code == "pending_approval":
            return self._retry("waiting for an admin to approve this host", report=report, level=logging.INFO)
        if reply.status == 413 and batch.samples > 1:
            self.log.warning(
                "batch %d too large for the server (%s); sending it in halves", batch.sequence, reply.detail
            )
            self.spool.batch_split(batch, session=self.session)
            return True
        if reply.status in (400, 413, 415):
            # The server refused the batch as a whole, and would refuse it again at every try:
            # keeping it would block every later sample behind it.
            self.log.error(
                "batch %d refused by the server as a whole (%d %s: %s); its %d samples are dropped",
                batch.sequence,
                reply.status,
                code,
                reply.detail,
                batch.samples,
            )
            self.spool.batch_done(batch, rejected=batch.samples)
            return True
        # 429, 503, any other 5xx, and what a proxy might answer (404, 502): the batch waits.
        why = f"the server answered {reply.status}" + (f" {code}" if code else "") + f": {reply.detail}"
        return self._retry(why, report=report, retry_after=reply.retry_after())

    def _acknowledged(self, batch: Batch, answer: BatchAnswer, report: FlushReport) -> None:
        if answer.problems:
            self.once.warning(
                "batch-answer:" + ",".join(answer.problems),
                "the server's answer to batch %d has fields of the wrong shape (%s): ignored",
                batch.sequence,
                ", ".join(answer.problems),
            )
        if answer.rejected:
            self._log_rejected(batch, answer.rejected)
        self.spool.batch_done(batch, rejected=len(answer.rejected))
        report.acknowledged.append(batch)
        if self.on_acknowledged is not None:
            self.on_acknowledged(batch)
        report.samples += batch.samples
        if answer.duplicate:
            self.log.info(
                "batch %d of session %s was already stored (an earlier answer was lost)", batch.sequence, batch.session
            )
        else:
            self.log.debug(
                "batch stored",
                extra={"fields": {"sequence": batch.sequence, "session": batch.session, "accepted": answer.accepted}},
            )
        self.backoff.reset()
        self.retry_at, self.last_error = 0.0, None
        if not answer.problems:
            self.once.clear()
        if answer.invocations and self.on_invocations is not None:
            self.on_invocations(answer.invocations)

    def _log_rejected(self, batch: Batch, rejected: list[tuple[int | None, str]]) -> None:
        samples = json.loads(batch.body)["samples"]
        for index, reason in rejected:
            sample = samples[index] if index is not None and index < len(samples) else {}
            self.log.warning(
                "sample refused by the server and dropped: %s",
                reason,
                extra={"fields": {"timestamp": sample.get("timestamp"), "index": index}},
            )

    def _retry(
        self,
        why: str,
        *,
        report: FlushReport,
        retry_after: float | None = None,
        level: int = logging.WARNING,
        kind: str | None = None,
    ) -> bool:
        """Wait a backoff before the next try. A ``kind`` of trouble is logged once until an answer is good."""
        delay = self.backoff.next_delay(retry_after=retry_after)
        self.retry_at = self.monotonic() + delay
        self.last_error = report.failure = why
        if kind is not None:
            if kind in self.once.told:
                level = logging.DEBUG
            self.once.told.add(kind)
        self.log.log(
            level,
            "%s; %d samples waiting, next try in %.1f s",
            why,
            self.spool.depth(self.stream),
            delay,
        )
        return False
