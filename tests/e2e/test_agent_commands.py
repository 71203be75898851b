"""End to end: the reference agent (agent/) and the server's command lifecycle, each as a real process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from commands.models import Command, InvocationTransition
from hosts.services import enrollment_key_create
from tests.agent.conftest import AgentProcess, agent_enroll_cli
from tests.commands.conftest import grant
from tests.e2e.conftest import LiveServer, server_start, server_stop

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def twin(transactional_db, django_db_serialized_rollback, tmp_path, channel_prefix) -> Iterator[LiveServer]:
    server = server_start(tmp_path, CHANNEL_LAYER_PREFIX=channel_prefix, TWIN_AGENT_AUTH="signed")
    yield server
    server_stop(server)


@pytest.fixture
def send(twin: LiveServer, django_user_model):
    """``POST /api/commands`` as an operator with a token, over real HTTP (urllib: the server is another process)."""
    import urllib.request

    user = django_user_model.objects.create_user("alice", password="a-long-password-1")
    grant(user, "add_command")
    token = Token.objects.create(user=user).key

    def send(**document) -> int:
        request = urllib.request.Request(
            f"{twin.url}/api/commands",
            data=orjson.dumps(document),
            headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 201
            return orjson.loads(response.read())["id"]

    return send


def _agent(twin: LiveServer, tmp_path: Path, hostname: str, *args: str) -> AgentProcess:
    _, key = enrollment_key_create(name="agent commands")
    state_dir = tmp_path / hostname
    enrolled = agent_enroll_cli(server=twin.url, key=key, state_dir=state_dir, hostname=hostname)
    assert enrolled.returncode == 0, enrolled.stderr
    return AgentProcess(state_dir=state_dir, log=tmp_path / f"{hostname}.log", args=args).start()


def _finished(command_id: int, agent: AgentProcess, timeout: float = 30) -> Command:
    deadline = time.monotonic() + timeout
    while True:
        command = Command.objects.get(pk=command_id)
        if not command.invocations.exclude(state__in=["succeeded", "failed"]).exists():
            return command
        assert time.monotonic() < deadline, agent.log.read_text()[-3000:]
        time.sleep(0.2)


def test_an_agent_on_the_long_poll_runs_a_ping_as_soon_as_it_is_sent(twin, send, tmp_path):
    # Batches every 60 s: only the long poll can bring the command quickly.
    agent = _agent(twin, tmp_path, "poller-01", "--interval", "60")
    try:
        agent.wait_log(lambda e: "long poll" in e.get("msg", "") or e.get("msg") == "sample collected")
        time.sleep(1)
        command_id = send(action="ping", targets={"hosts": ["poller-01"]})
        command = _finished(command_id, agent, timeout=15)
        invocation = command.invocations.get()
        assert invocation.state == "succeeded", agent.log.read_text()[-3000:]
        assert set(invocation.data) == {"agentTime", "agentVersion"}
        moves = InvocationTransition.objects.filter(invocation=invocation).order_by("id")
        assert [(m.to_state, m.cause) for m in moves] == [
            ("queued", "created"),
            ("dispatched", "poll"),
            ("running", "agent"),
            ("succeeded", "agent"),
        ]
    finally:
        agent.cleanup()


def test_an_agent_without_the_long_poll_gets_a_command_in_its_batch_answer_and_applies_it(twin, send, tmp_path):
    agent = _agent(twin, tmp_path, "batcher-01", "--interval", "0.5", "--no-long-poll")
    try:
        agent.wait_collected(1)
        command_id = send(action="set-interval", args={"seconds": 2}, targets={"hosts": ["batcher-01"]})
        invocation = _finished(command_id, agent).invocations.get()
        assert (invocation.state, invocation.data) == ("succeeded", {"intervalSeconds": 2})
        assert InvocationTransition.objects.get(invocation=invocation, to_state="dispatched").cause == "batch"
        # The agent is told the command ended the way it reported; a dashboard reading the command sees it too.
        reader = Client()
        reader.force_login(Token.objects.get().user)
        assert reader.get(f"/api/commands/{command_id}").json()["state"] == "completed"
    finally:
        agent.cleanup()


def test_thirty_collect_nows_to_a_real_agent_all_succeed_alongside_its_own_sends(twin, send, tmp_path):
    # Its own sends every 0.2 s: each collect-now's sample races the send loop's wake-up, which once
    # took the sample from under the command ("the server did not acknowledge the sample: no answer").
    agent = _agent(twin, tmp_path, "collector-01", "--interval", "0.2")
    try:
        agent.wait_collected(2)
        outcomes = []
        for _ in range(30):
            command_id = send(action="collect-now", targets={"hosts": ["collector-01"]})
            invocation = _finished(command_id, agent).invocations.get()
            outcomes.append((invocation.state, invocation.data, invocation.output))
        failed = [o for o in outcomes if o[0] != "succeeded"]
        assert not failed, f"{len(failed)} of 30 failed: {failed[:3]}"
        sequences = [data["sequence"] for _, data, _ in outcomes]
        assert sequences == sorted(sequences) and len(set(sequences)) == 30
        # The agent went on with its own schedule meanwhile: more samples than the commands asked for.
        assert len(agent.collected()) > 30 + 2
    finally:
        agent.cleanup()
