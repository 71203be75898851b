"""The agent's side of the command lifecycle, against a small fake of the server's command endpoints.

``fake_twin.py`` implements just the command endpoints the agent calls (docs/api.md,
section 8), checking signatures as the server does; tests/e2e/test_agent_commands.py
runs the agent against the real server.
"""

from __future__ import annotations

import os
import time

import pytest
from twin_agent.agent import Agent
from twin_agent.commands import DEFAULT_ALLOW, OUTPUT_MAX_BYTES
from twin_agent.config import Config

from tests.agent.conftest import credential_write
from tests.agent.fake_twin import FakeTwin


@pytest.fixture
def fake_twin():
    twin = FakeTwin().start()
    yield twin
    twin.stop()


@pytest.fixture
def make_agent(tmp_path, fake_twin):
    agents = []

    def make(*, allow=DEFAULT_ALLOW, hostname="cmd-01", registration=None):
        state_dir = tmp_path / hostname
        if registration is None:
            registration = fake_twin.credential(hostname)
        credential = credential_write(state_dir, registration, fake_twin.url)
        agent = Agent(config=Config(state_dir=state_dir, allow=tuple(allow), long_poll=False), credential=credential)
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        agent.spool.close()


def deliver(agent: Agent) -> None:
    """A sample and its batch: the answer carries the host's invocations."""
    agent.collect_once()
    agent.uplink.flush()


def test_an_invocation_from_a_batch_answer_is_acknowledged_run_and_reported(make_agent, fake_twin):
    agent = make_agent()
    ping = fake_twin.invocation_add("cmd-01", 1, "ping")
    deliver(agent)

    assert agent.runner.run_queued() == 1

    running, result = ping.posts
    assert running["status"] == "running" and running["started_at"].endswith("Z")
    assert (result["status"], result["exit_code"]) == ("succeeded", 0)
    assert result["data"]["agentVersion"] == "0.1.0" and result["data"]["agentTime"].endswith("Z")
    assert result["output"] == f"pong: twin-agent 0.1.0, agent time {result['data']['agentTime']}\n"
    assert result["started_at"] == running["started_at"] <= result["finished_at"]


def test_set_interval_changes_the_interval_and_keeps_it_across_a_restart(make_agent, fake_twin):
    agent = make_agent()
    registration = {"keyId": agent.credential.key_id}
    command = fake_twin.invocation_add("cmd-01", 1, "set-interval", {"seconds": 7})
    deliver(agent)
    agent.runner.run_queued()

    assert (command.posts[-1]["status"], command.posts[-1]["data"]) == ("succeeded", {"intervalSeconds": 7})
    assert agent.interval == 7
    agent.spool.close()
    restarted = Agent(config=agent.config, credential=agent.credential)
    assert restarted.interval == 7 and registration["keyId"] == restarted.credential.key_id
    restarted.spool.close()


@pytest.mark.parametrize("seconds", [0, 3601, "5", 2.5, True, None])
def test_set_interval_refuses_seconds_outside_1_to_3600(make_agent, fake_twin, seconds):
    agent = make_agent()
    command = fake_twin.invocation_add("cmd-01", 1, "set-interval", {"seconds": seconds})
    deliver(agent)
    agent.runner.run_queued()
    assert command.posts[-1]["status"] == "failed"
    assert "invalid args" in command.posts[-1]["output"]
    assert agent.interval == 1  # the fake's heartbeat


def test_collect_now_sends_a_batch_at_once_and_reports_its_sequence(make_agent, fake_twin):
    agent = make_agent()
    command = fake_twin.invocation_add("cmd-01", 1, "collect-now")
    deliver(agent)
    agent.runner.run_queued()

    result = command.posts[-1]
    assert result["status"] == "succeeded", result
    last = fake_twin.batches[-1]
    assert result["data"] == {"sequence": last["sequence"]} and last["sequence"] == 2
    assert len(last["samples"]) == 1


def test_shell_outside_the_allow_list_is_refused_and_never_run(make_agent, fake_twin, tmp_path):
    agent = make_agent()
    marker = tmp_path / "ran"
    command = fake_twin.invocation_add("cmd-01", 1, "shell", {"command": f"touch {marker}"})
    deliver(agent)
    agent.runner.run_queued()

    result = command.posts[-1]
    assert (result["status"], result["data"]) == ("failed", {"refused": "not_allowed"})
    assert "not in this agent's allow-list" in result["output"]
    assert not marker.exists()


def test_an_action_the_agent_does_not_know_is_refused(make_agent, fake_twin):
    agent = make_agent()
    command = fake_twin.invocation_add("cmd-01", 1, "format-disk")
    deliver(agent)
    agent.runner.run_queued()
    assert command.posts[-1]["status"] == "failed"
    assert "unknown to this agent" in command.posts[-1]["output"]


def test_an_allowed_shell_command_reports_its_exit_code_and_output(make_agent, fake_twin):
    agent = make_agent(allow=[*DEFAULT_ALLOW, "shell"])
    failing = fake_twin.invocation_add("cmd-01", 1, "shell", {"command": "echo hello; echo oops >&2; exit 3"})
    passing = fake_twin.invocation_add("cmd-01", 2, "shell", {"command": "printf ok"})
    deliver(agent)
    agent.runner.run_queued()

    assert (failing.posts[-1]["status"], failing.posts[-1]["exit_code"]) == ("failed", 3)
    assert failing.posts[-1]["output"] == "hello\noops\n"
    assert (passing.posts[-1]["status"], passing.posts[-1]["exit_code"], passing.posts[-1]["output"]) == (
        "succeeded",
        0,
        "ok",
    )


def test_a_shell_command_past_its_timeout_is_killed_with_its_children(make_agent, fake_twin):
    agent = make_agent(allow=["shell"])
    command = fake_twin.invocation_add(
        "cmd-01", 1, "shell", {"command": "sleep 30 & echo started; sleep 30"}, timeout_seconds=1
    )
    deliver(agent)
    started = time.monotonic()
    agent.runner.run_queued()

    assert time.monotonic() - started < 5
    result = command.posts[-1]
    assert (result["status"], result["exit_code"], result["data"]) == ("failed", 124, {"timedOut": True})
    assert result["output"].startswith("started\n")


def test_output_beyond_the_limit_is_truncated_with_the_servers_marker(make_agent, fake_twin):
    agent = make_agent(allow=["shell"])
    command = fake_twin.invocation_add("cmd-01", 1, "shell", {"command": "head -c 100000 /dev/zero | tr '\\0' a"})
    deliver(agent)
    agent.runner.run_queued()

    output = command.posts[-1]["output"]
    assert output.startswith("a" * OUTPUT_MAX_BYTES)
    assert output.endswith(f"\n…[truncated {100000 - OUTPUT_MAX_BYTES} bytes]")


def test_an_invocation_handed_out_again_runs_once(make_agent, fake_twin, tmp_path):
    agent = make_agent(allow=["shell"])
    log = tmp_path / "runs"
    command = fake_twin.invocation_add("cmd-01", 1, "shell", {"command": f"echo run >> {log}"})
    deliver(agent)
    deliver(agent)  # still "dispatched": the fake hands it out again, as the protocol allows
    assert agent.runner.offer([command.wire()]) == 0
    agent.runner.run_queued()
    deliver(agent)
    agent.runner.run_queued()

    assert log.read_text() == "run\n"
    assert [p["status"] for p in command.posts] == ["running", "succeeded"]


def test_an_invocation_cancelled_before_it_started_is_not_run(make_agent, fake_twin, tmp_path):
    agent = make_agent(allow=["shell"])
    marker = tmp_path / "ran"
    command = fake_twin.invocation_add("cmd-01", 1, "shell", {"command": f"touch {marker}"})
    deliver(agent)
    command.state = "cancelled"  # an operator cancelled it after it was handed out
    agent.runner.run_queued()

    assert not marker.exists()
    assert command.posts == []
    assert not agent.runner.has_work()


def test_a_result_the_server_could_not_take_is_posted_after_a_restart_and_not_run_again(
    make_agent, fake_twin, tmp_path
):
    agent = make_agent(allow=["shell"])
    log = tmp_path / "runs"
    command = fake_twin.invocation_add("cmd-01", 1, "shell", {"command": f"echo run >> {log}"})
    deliver(agent)
    fake_twin.result_status = 503
    agent.runner.run_queued()
    assert command.posts == [] and agent.runner.has_work()
    agent.spool.close()

    fake_twin.result_status = 200
    restarted = Agent(config=agent.config, credential=agent.credential)
    restarted.runner.offer([command.wire()])  # handed out again: not yet acknowledged
    restarted.runner.run_queued()

    assert log.read_text() == "run\n"
    assert [p["status"] for p in command.posts] == ["running", "succeeded"]
    restarted.spool.close()


def test_a_command_cut_short_by_a_crash_is_reported_failed_and_not_run_again(make_agent, fake_twin):
    agent = make_agent()
    command = fake_twin.invocation_add("cmd-01", 1, "ping")
    deliver(agent)
    with agent.spool.transaction() as db:  # what a kill -9 mid-command leaves
        db.execute("UPDATE invocations SET state = 'running', started_at = '2026-01-01T00:00:00.000Z'")
    agent.spool.close()

    restarted = Agent(config=agent.config, credential=agent.credential)
    restarted.runner.run_queued()

    assert [p["status"] for p in command.posts] == ["running", "failed"]
    assert command.posts[-1]["data"] == {"interrupted": True}
    restarted.spool.close()


def test_the_long_poll_is_signed_over_its_get_line_and_delivers_invocations(make_agent, fake_twin):
    agent = make_agent()
    fake_twin.invocation_add("cmd-01", 5, "ping")
    assert agent.runner.poll(wait=1) == "ok"
    assert fake_twin.polls == ["/api/commands/pending?wait=1"]
    assert agent.runner.run_queued() == 1


def test_a_server_without_the_long_poll_is_told_apart_from_an_outage(tmp_path):
    twin = FakeTwin(long_poll=False).start()
    try:
        credential = credential_write(tmp_path / "s", twin.credential("cmd-01"), twin.url)
        agent = Agent(config=Config(state_dir=tmp_path / "s"), credential=credential)
        assert agent.runner.poll(wait=1) == "unsupported"
        agent.spool.close()
    finally:
        twin.stop()


@pytest.mark.e2e
def test_the_agent_process_runs_commands_and_restarts_itself_when_told(fake_twin, tmp_path, agent_process):
    state_dir = tmp_path / "state"
    credential_write(state_dir, fake_twin.credential("cmd-01"), fake_twin.url)
    agent = agent_process(state_dir, "--interval", "0.3").start()
    agent.wait_collected(1)
    interval = fake_twin.invocation_add("cmd-01", 1, "set-interval", {"seconds": 2})
    restart = fake_twin.invocation_add("cmd-01", 2, "restart-agent")

    assert fake_twin.wait_for(lambda: restart.state == "succeeded", timeout=15), agent.log.read_text()
    started = agent.wait_log(lambda e: e.get("msg", "").startswith("twin-agent") and "every 2 s" in e["msg"])
    first = next(e for e in agent.lines() if e.get("msg", "").startswith("twin-agent"))

    assert interval.posts[-1]["data"] == {"intervalSeconds": 2}
    assert started["session"] != first["session"]  # a fresh process: a new session...
    assert agent.process.poll() is None  # ...in the same process id (exec), as systemd expects
    assert fake_twin.wait_for(lambda: any(b["agent_session"] == started["session"] for b in fake_twin.batches))
    assert agent.terminate() == 0
    sessions = {(b["agent_session"], b["sequence"]) for b in fake_twin.batches}
    assert len(sessions) == len(fake_twin.batches)  # no batch sent twice
    assert os.path.exists(state_dir / "spool.sqlite3")


@pytest.mark.e2e
def test_collect_now_on_a_running_agent_fails_at_once_with_the_servers_answer_when_batches_wait(
    fake_twin, tmp_path, agent_process
):
    state_dir = tmp_path / "state"
    credential_write(state_dir, fake_twin.credential("cmd-01"), fake_twin.url)
    agent = agent_process(state_dir, "--interval", "0.3").start()
    agent.wait_collected(1)
    fake_twin.batch_status = 503
    started = time.monotonic()
    command = fake_twin.invocation_add("cmd-01", 1, "collect-now")

    assert fake_twin.wait_for(lambda: command.state == "failed", timeout=15), agent.log.read_text()
    # The sender's forced try answered the waiting command (not the 60 s bound), with the reason.
    assert time.monotonic() - started < 10
    assert "503" in command.posts[-1]["output"] and "fake ingestion outage" in command.posts[-1]["output"]
    fake_twin.batch_status = 202
    again = fake_twin.invocation_add("cmd-01", 2, "collect-now")
    assert fake_twin.wait_for(lambda: again.state == "succeeded", timeout=15), agent.log.read_text()
    assert again.posts[-1]["data"]["sequence"] == max(b["sequence"] for b in fake_twin.batches)
    assert agent.terminate() == 0
