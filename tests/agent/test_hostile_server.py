"""The agent against a hostile server: every answer is input to check, none ends the agent (issue 24, item 3).

A real HTTP server on loopback (``hostile_server.py``) answers arbitrary
statuses, headers and bytes, and JSON of every wrong shape: ``invocations``
that is ``null``, a number or ``true``, ids beyond 64 bits, ``Retry-After`` of
``inf`` or 10**12 seconds, heartbeats of 0, NaN or 10**308, text with newlines
and terminal escapes, bodies of 128 MB and gzip bombs. Hypothesis drives the
agent's parts (uplink, command runner, registration) with them; a process test
runs the whole agent against a server cycling through the worst of them.

The one answer the agent obeys by stopping is the protocol's own refusal of
its credential (``401`` with a code of ``FINAL_401``): the strategies leave it out.
"""

from __future__ import annotations

import json
import logging
import math
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twin_agent.agent import Agent
from twin_agent.answers import ID_MAX, INTERVAL_RANGE, error_code
from twin_agent.backoff import Backoff
from twin_agent.collect import sample_bytes
from twin_agent.commands import CommandRunner, Executor
from twin_agent.config import Config
from twin_agent.logs import TextFormatter, text_safe
from twin_agent.protocol import FINAL_401, EnrollmentRefused, SignedClient, Uplink, host_register
from twin_agent.spool import Spool
from twin_agent.state import Credential, credential_save
from twin_agent.transport import ANSWER_MAX_BYTES, Http, TransportError

from tests.agent.conftest import AgentProcess
from tests.agent.hostile_server import Answer, HostileServer, gzip_bomb

CAP = 2.0  # backoff_max of the agents here
FORGED = "\n2026-01-01T00:00:00.000Z ERROR forged line\x1b[2J\x1b]0;owned\x07\r\u2028"
LINE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")


# --- what a hostile server answers ----------------------------------------------------------

hostile_text = st.one_of(
    st.sampled_from([FORGED, "", "x" * 5000, "\x00\x1b[31mred", "ok"]),
    st.text(max_size=40),
)
hostile_number = st.one_of(
    st.sampled_from([0, -1, 2**63, 2**64, -(2**64), 10**30, 1e308, -1e308, math.inf, -math.inf, math.nan]),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
)
hostile_scalar = st.one_of(st.none(), st.booleans(), hostile_number, hostile_text)
hostile_json = st.recursive(
    hostile_scalar,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(hostile_text, children, max_size=4)),
    max_leaves=12,
)
invocation_like = st.fixed_dictionaries(
    {},
    optional={
        "commandId": st.one_of(hostile_number, st.integers(min_value=1, max_value=ID_MAX), hostile_scalar),
        "action": st.one_of(st.sampled_from(["ping", "set-interval", "shell", "nope"]), hostile_scalar),
        "args": st.one_of(st.just({}), hostile_json),
        "timeoutSeconds": hostile_number,
        "issuedAt": hostile_scalar,
    },
)
protocol_object = st.fixed_dictionaries(
    {},
    optional={
        "accepted": hostile_scalar,
        "duplicate": hostile_scalar,
        "rejected": st.one_of(
            hostile_scalar,
            st.lists(st.fixed_dictionaries({}, optional={"index": hostile_number, "reason": hostile_text}), max_size=5),
        ),
        "invocations": st.one_of(hostile_scalar, hostile_json, st.lists(invocation_like, max_size=4)),
        "error": st.one_of(st.sampled_from(["stale_timestamp", "throttled", "no_valid_samples"]), hostile_scalar),
        "detail": hostile_scalar,
        "state": hostile_scalar,
        "hostname": hostile_scalar,
        "keyId": st.one_of(st.just("tak_0123456789abcdef01234567"), hostile_scalar),
        "signingSecret": st.one_of(st.just("s" * 64), hostile_scalar),
        "heartbeatIntervalSeconds": hostile_scalar,
        "twinId": hostile_scalar,
    },
)
BOMB = gzip_bomb(4 * ANSWER_MAX_BYTES)
special_bodies = st.sampled_from(
    [
        Answer(200, (), b"[" * 100_000),
        Answer(202, (), b'{"accepted": ' + b"1" * 5000 + b"}"),
        Answer(202, (("Content-Encoding", "gzip"),), BOMB),
        Answer(202, (("Content-Encoding", "gzip"),), b"not gzip at all"),
        Answer(202, (), b"", stream_bytes=2 * ANSWER_MAX_BYTES),
        Answer(202, (), b'{"invocations": []}', stream_bytes=2 * ANSWER_MAX_BYTES, content_length=False),
        Answer(200, (), b"<html>captive portal</html>"),
        Answer(204, (), b""),
    ]
)
header_value = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=30)
headers = st.lists(
    st.tuples(
        st.sampled_from(["Retry-After", "Content-Type", "X-Anything"]),
        st.one_of(
            st.sampled_from(["inf", "-inf", "nan", "1e12", "1e999", "-5", "0", "Wed, 21 Oct 9999 07:28:00 GMT"]),
            header_value,
        ),
    ),
    max_size=3,
)
statuses = st.one_of(
    st.sampled_from([200, 201, 202, 400, 401, 403, 404, 409, 413, 415, 429, 500, 502, 503]), st.integers(200, 599)
)


def _encoded(value: Any) -> bytes:
    return json.dumps(value).encode()  # NaN and Infinity as Python writes them: hostile too


def _not_a_final_refusal(answer: Answer) -> bool:
    if answer.status != 401:
        return True
    try:
        return error_code(json.loads(answer.body)) not in FINAL_401
    except (ValueError, RecursionError):
        return True


answers = st.one_of(
    st.builds(Answer, statuses, headers, st.one_of(protocol_object, hostile_json).map(_encoded)),
    st.builds(Answer, statuses, headers, st.binary(max_size=200)),
    special_bodies,
).filter(_not_a_final_refusal)


# --- the parts under test -------------------------------------------------------------------


class CapturedLog(logging.Handler):
    """The agent's records, formatted as its text log writes them."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(TextFormatter())
        self.lines: list[str] = []
        self.with_traceback = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.with_traceback += record.exc_info is not None
        self.lines.append(self.format(record))


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileServer]:
    server = HostileServer().start()
    yield server
    server.stop()


def credential(server: str, *, heartbeat: Any = 10.0) -> Credential:
    return Credential(
        server=server,
        hostname="hostile-01",
        key_id="tak_0123456789abcdef01234567",
        signing_secret="s" * 64,
        heartbeat_seconds=heartbeat,
        twin_id="twin-hostile",
        enrolled_at="2026-01-01T00:00:00.000Z",
    )


def spool_check(spool: Spool, stream: str) -> None:
    """Intact: SQLite finds nothing wrong, and every sample collected is delivered, refused, dropped or waiting."""
    assert spool.read("PRAGMA integrity_check") == [("ok",)]
    counters = spool.counters(stream)
    accounted = counters["delivered"] + counters["rejected"] + counters["dropped"] + spool.depth(stream)
    assert counters["collected"] == accounted, counters


def lines_check(lines: list[str]) -> None:
    """Each record is one line of the agent's own, with no control character the server sent."""
    for line in lines:
        assert LINE_RE.match(line), line
        assert text_safe(line, limit=None) == line, line
        assert "Traceback" not in line and "forged line" not in line.split(" ", 2)[1]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(script=st.lists(answers, min_size=1, max_size=6))
def test_no_answer_ends_the_uplink_or_the_command_runner_or_harms_the_spool(hostile, script):
    hostile.play(script)
    log = logging.getLogger("twin_agent.hostile")
    captured = CapturedLog()
    log.addHandler(captured)
    log.setLevel(logging.DEBUG)
    http = Http(hostile.url, timeout=2.0, connect_timeout=2.0)
    with tempfile.TemporaryDirectory() as state_dir:
        spool = Spool(Path(state_dir) / "spool.sqlite3", max_samples=50, durable=False)
        try:
            client = SignedClient(http=http, credential=credential(hostile.url))
            runner = CommandRunner(client=client, spool=spool, executor=Executor(host=None), log=log)  # type: ignore[arg-type]
            uplink = Uplink(
                client=client, spool=spool, session="s1", backoff=Backoff(cap=CAP), log=log, on_invocations=runner.offer
            )
            for turn in range(len(script)):
                spool.add(stream="hostile-01", sample=sample_bytes({"hostname": "hostile-01", "timestamp": f"t{turn}"}))
                if turn % 3 == 2:
                    assert runner.poll(wait=0) in ("ok", "error", "unsupported")
                else:
                    uplink.flush(force=True)
                    assert uplink.waiting() <= CAP * 1.1
            queued = spool.read("SELECT command_id, invocation FROM invocations")
            assert all(1 <= command_id <= ID_MAX for command_id, _ in queued)
            spool_check(spool, "hostile-01")
        finally:
            spool.close()
            http.close()
            log.removeHandler(captured)
    lines_check(captured.lines)
    assert captured.with_traceback == 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(answer=answers)
def test_a_registration_answer_gives_a_bounded_credential_or_a_clear_refusal(hostile, answer):
    hostile.play([answer])
    http = Http(hostile.url, timeout=2.0, connect_timeout=2.0)
    try:
        got = host_register(
            http=http, enrollment_key="tek_x", hostname="hostile-01", platform="Linux", agent_version="0.1.0"
        )
    except (EnrollmentRefused, TransportError) as refused:
        assert text_safe(str(refused), limit=None) == str(refused)
        return
    finally:
        http.close()
    assert INTERVAL_RANGE[0] <= got.heartbeat_seconds <= INTERVAL_RANGE[1]
    assert re.match(r"^[A-Za-z0-9_.:-]{1,128}$", got.key_id)
    assert text_safe(got.hostname, limit=None) == got.hostname


@pytest.mark.parametrize("heartbeat", [0, -1, math.nan, math.inf, 1e308, "soon", None, True])
def test_a_stored_heartbeat_out_of_range_gives_an_interval_the_configuration_allows(tmp_path, heartbeat):
    state_dir = tmp_path / "state"
    agent = Agent(config=Config(state_dir=state_dir), credential=credential("http://127.0.0.1:9", heartbeat=heartbeat))
    try:
        assert INTERVAL_RANGE[0] <= agent.interval <= INTERVAL_RANGE[1]
    finally:
        agent.spool.close()
        agent.http.close()


@pytest.mark.parametrize("heartbeat", [0, -1, "NaN", 1e308, "10 s", None])
def test_a_registration_answer_with_a_hostile_heartbeat_is_bounded(hostile, heartbeat):
    registration = {"hostname": "h", "keyId": "tak_1", "signingSecret": "s" * 64, "twinId": "t"}
    if heartbeat is not None:
        registration["heartbeatIntervalSeconds"] = heartbeat
    hostile.play([Answer(201, (), json.dumps(registration).encode().replace(b'"NaN"', b"NaN"))])
    http = Http(hostile.url, timeout=2.0)
    got = host_register(http=http, enrollment_key="tek_x", hostname="h", platform="Linux", agent_version="0.1.0")
    http.close()
    assert INTERVAL_RANGE[0] <= got.heartbeat_seconds <= INTERVAL_RANGE[1]


def test_a_128_mb_answer_is_cut_at_the_cap_without_reading_it_whole(hostile):
    hostile.play([Answer(202, (), b"", stream_bytes=128 * 1024 * 1024, content_length=False)])
    http = Http(hostile.url, timeout=5.0)
    rss = psutil.Process().memory_info().rss
    started = time.monotonic()
    with pytest.raises(TransportError, match="larger than"):
        http.request("POST", "/api/metrics/batch", body=b"{}")
    assert time.monotonic() - started < 3
    assert psutil.Process().memory_info().rss - rss < 32 * 1024 * 1024
    http.close()


def test_a_server_dripping_its_answer_is_given_up_after_the_read_timeout(hostile):
    # Content-Length promises more than comes: each read waits its timeout, the whole answer no longer.
    hostile.play([Answer(202, (("Content-Length", "100"),), b"{", content_length=False)])
    http = Http(hostile.url, timeout=1.0)
    started = time.monotonic()
    with pytest.raises(TransportError):
        http.request("POST", "/api/metrics/batch", body=b"{}")
    assert time.monotonic() - started < 4
    http.close()


# --- the whole agent, as a process -----------------------------------------------------------

WORST = [
    Answer(202, (), b'{"accepted": 1, "invocations": true}'),
    Answer(202, (), b'{"accepted": 1, "invocations": 7}'),
    Answer(202, (), b'{"accepted": 1, "invocations": null, "rejected": 5}'),
    Answer(202, (), json.dumps({"invocations": [{"commandId": 2**64, "action": "ping"}]}).encode()),
    Answer(503, (("Retry-After", "inf"),), json.dumps({"error": "x", "detail": FORGED}).encode()),
    Answer(429, (("Retry-After", "1e12"),), b"{}"),
    Answer(401, (), b"<html>proxy login</html>"),
    Answer(202, (), b"", stream_bytes=128 * 1024 * 1024, content_length=False),
    Answer(202, (("Content-Encoding", "gzip"),), BOMB),
    Answer(200, (), b"[" * 100_000),
    Answer(400, (), json.dumps({"error": "bad\nline", "detail": FORGED}).encode()),
]


def test_the_agent_lives_collects_and_spools_against_a_server_answering_only_nonsense(tmp_path):
    cycle = iter(range(10**9))

    def choose(method: str, path: str) -> Answer:
        if path.startswith("/api/commands/pending"):  # answered at once, every time: no busy loop either
            return Answer(200, (), b'{"invocations": {"commandId": 1}}')
        return WORST[next(cycle) % len(WORST)]

    server = HostileServer(chooser=choose).start()
    state_dir = tmp_path / "state"
    credential_save(state_dir=state_dir, credential=credential(server.url, heartbeat=0))  # bounded to 0.1 s
    agent = AgentProcess(state_dir=state_dir, log=tmp_path / "agent.log")
    agent.args = ("--log-format", "text", "--backoff-max", str(CAP), "--request-timeout", "3", "--allow", "ping")
    agent.start()
    try:
        process = psutil.Process(agent.process.pid)
        time.sleep(1.0)  # interpreter start
        cpu_before, started, peak_rss = sum(process.cpu_times()[:2]), time.monotonic(), 0
        requests_before = len(server.requests)
        while time.monotonic() - started < 8:
            assert agent.process.poll() is None, agent.log.read_text()
            peak_rss = max(peak_rss, process.memory_info().rss)
            time.sleep(0.1)
        elapsed = time.monotonic() - started
        cpu = (sum(process.cpu_times()[:2]) - cpu_before) / elapsed
        requests = len(server.requests) - requests_before
        assert agent.terminate() == 0
    finally:
        agent.cleanup()
        server.stop()
    text = agent.log.read_text()
    lines = text.splitlines()
    lines_check(lines)
    collected = [line for line in lines if " DEBUG sample collected" in line]
    assert len(collected) > 40, text[-3000:]  # every 0.1 s for 9 s, the collector never stopped
    assert cpu < 0.6, f"{cpu:.0%} of a core"
    assert requests < 40 * elapsed, requests  # batches after samples and backoffs, polls a second apart
    assert peak_rss < 120 * 1024 * 1024, peak_rss
    spool = Spool(state_dir / "spool.sqlite3")
    try:
        spool_check(spool, "hostile-01")
    finally:
        spool.close()
    print(f"hostile run: {requests} requests in {elapsed:.1f} s, cpu {cpu:.0%}, peak rss {peak_rss / 2**20:.0f} MiB")
