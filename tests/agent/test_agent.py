"""The agent as it runs: a real process against a live twin, through outages and kills.

Each test starts ``twin-agent run`` in a subprocess (interval 0.25 s, backoff
at most 1 s, so each stays within seconds) against daphne serving the test
database, and checks the history (the ``metrics_sample`` table) at the end:
every sample the agent took is there exactly once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from django.utils import timezone
from twin_agent.agent import EXIT_CREDENTIAL_REFUSED

from hosts.models import AgentCredential
from hosts.services import credentials_revoke, enrollment_key_create
from metrics.models import Sample
from tests.agent.conftest import ROOT, AgentProcess, agent_enroll_cli
from tests.e2e.conftest import LiveServer, server_start, server_stop

pytestmark = pytest.mark.e2e

AGENT_ARGS = ("--interval", "0.25", "--backoff-max", "1", "--no-long-poll")


@pytest.fixture
def twin_servers(transactional_db, django_db_serialized_rollback, tmp_path, channel_prefix) -> Iterator[Callable]:
    """Start (and restart, on the same port) live twins in production mode; all stopped at the end."""
    started: list[LiveServer] = []

    def start(port: int | None = None) -> LiveServer:
        server = server_start(tmp_path, port=port, CHANNEL_LAYER_PREFIX=channel_prefix, TWIN_AGENT_AUTH="signed")
        started.append(server)
        return server

    yield start
    for server in started:
        if server.process.poll() is None:
            server_stop(server)


def enrolled_state(server: LiveServer, tmp_path: Path, hostname: str) -> Path:
    _, key = enrollment_key_create(name="agent e2e")
    state_dir = tmp_path / "state"
    result = agent_enroll_cli(server=server.url, key=key, state_dir=state_dir, hostname=hostname)
    assert result.returncode == 0, result.stderr
    return state_dir


def stored(hostname: str) -> list[datetime]:
    return list(Sample.objects.filter(host__hostname=hostname).values_list("timestamp", flat=True))


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.1)


def spool_status(state_dir: Path) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "twin_agent", "status", "--state-dir", str(state_dir)],
        capture_output=True, text=True, timeout=30, cwd=ROOT, check=True,
    )  # fmt: skip
    return json.loads(result.stdout)["spool"]


def assert_every_sample_stored_once(hostname: str, state_dir: Path, *agents: AgentProcess) -> int:
    """Every sample the agents logged is in the history once, and the history holds no other."""
    history = stored(hostname)
    logged = [datetime.fromisoformat(t.replace("Z", "+00:00")) for a in agents for t in a.collected()]
    spool = spool_status(state_dir)
    assert spool["waiting"] == 0
    assert set(logged) <= set(history), sorted(set(logged) - set(history))
    # The spool counts each sample it took in the same transaction as the sample itself, so
    # this holds even for one taken in the instant before a kill -9, before its log line.
    assert len(history) == len(set(history)) == spool["collected"] == spool["delivered"]
    assert spool["dropped"] == spool["rejected"] == 0
    return len(history)


def test_a_server_stopped_mid_stream_loses_no_sample_and_stores_none_twice(twin_servers, tmp_path, agent_process):
    server = twin_servers()
    port = int(server.url.rsplit(":", 1)[1])
    state_dir = enrolled_state(server, tmp_path, "outage-01")
    agent = agent_process(state_dir, *AGENT_ARGS).start()
    agent.wait_collected(4)
    wait_until(lambda: len(stored("outage-01")) >= 3, 10, "the first samples stored")

    server_stop(server)
    down_at = timezone.now()
    agent.wait_collected(len(agent.collected()) + 8)  # two seconds of samples with no server
    agent.wait_log(lambda e: "server unreachable" in e.get("msg", ""))
    up_at = timezone.now()
    twin_servers(port=port)
    wait_until(lambda: len(stored("outage-01")) >= len(agent.collected()), 20, "the backlog sent after the outage")
    assert agent.terminate() == 0

    total = assert_every_sample_stored_once("outage-01", state_dir, agent)
    during = [t for t in stored("outage-01") if down_at <= t <= up_at]
    assert len(during) >= 6, (total, len(during))


def test_an_agent_killed_with_sigkill_loses_no_sample_and_stores_none_twice(twin_servers, tmp_path, agent_process):
    server = twin_servers()
    state_dir = enrolled_state(server, tmp_path, "killed-01")
    first = agent_process(state_dir, *AGENT_ARGS).start()
    first.wait_collected(6)
    first.kill()

    second = agent_process(state_dir, *AGENT_ARGS).start()
    second.wait_collected(6)
    wait_until(
        lambda: len(stored("killed-01")) >= len(first.collected()) + len(second.collected()) - 1,
        10,
        "the samples of both runs stored",
    )
    assert second.terminate() == 0

    assert_every_sample_stored_once("killed-01", state_dir, first, second)
    sessions = {e["session"] for a in (first, second) for e in a.lines() if "session" in e}
    assert len(sessions) == 2  # each start is a new session; a batch numbered before the kill kept its own


def test_an_agent_whose_credential_is_revoked_stops_and_says_how_to_enroll_again(twin_servers, tmp_path, agent_process):
    server = twin_servers()
    state_dir = enrolled_state(server, tmp_path, "revoked-01")
    agent = agent_process(state_dir, *AGENT_ARGS).start()
    wait_until(lambda: len(stored("revoked-01")) >= 1, 10, "a first sample stored")

    credentials_revoke(credentials=AgentCredential.objects.filter(host__hostname="revoked-01"), now=timezone.now())

    assert agent.process.wait(timeout=15) == EXIT_CREDENTIAL_REFUSED
    refusal = agent.wait_log(lambda e: e.get("level") == "error")
    assert "revoked" in refusal["msg"]
    assert f"twin-agent enroll --server {server.url} --enrollment-key KEY --state-dir {state_dir}" in refusal["msg"]
