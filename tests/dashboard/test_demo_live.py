"""``python -m dashboard.demo`` against a live twin: a refusal says why, a restart is waited for."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from dashboard.demo import fleet_samples, main, parser_build, samples_post
from tests.e2e.conftest import ROOT, free_port, server_start, server_stop

pytestmark = pytest.mark.usefixtures("transactional_db", "django_db_serialized_rollback")


def test_against_a_signed_server_it_prints_the_servers_reason_and_exits_2(tmp_path, capsys):
    server = server_start(tmp_path, TWIN_AGENT_AUTH="signed")
    try:
        assert main(["--url", server.url, "--hosts", "3", "--retry-for", "5"]) == 2
    finally:
        server_stop(server)
    err = capsys.readouterr().err
    assert "the server refused the batch: 401 " in err
    assert "TWIN_AGENT_AUTH=open" in err
    assert "Traceback" not in err


def test_its_help_describes_every_option():
    options = [action for action in parser_build()._actions if action.option_strings]
    assert all(action.help for action in options), [a.dest for a in options if not a.help]
    result = subprocess.run(
        [sys.executable, "-m", "dashboard.demo", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0
    assert "hosts in the fleet (default: 400)" in result.stdout
    assert "seconds to keep retrying a batch" in result.stdout


def test_a_server_that_comes_back_is_retried_with_a_growing_pause(tmp_path):
    port = free_port()
    started: list = []
    later = threading.Timer(2.0, lambda: started.append(server_start(tmp_path, port=port)))
    later.start()
    said: list[str] = []
    try:
        accepted = samples_post(f"http://127.0.0.1:{port}", fleet_samples(hosts=5), retry_for=60, say=said.append)
    finally:
        later.join()
        for server in started:
            server_stop(server)
    assert accepted == 10
    assert len(said) >= 2 and all("unreachable" in line and "retrying in" in line for line in said)
    pauses = [float(line.rsplit("retrying in ", 1)[1].split()[0]) for line in said]
    assert pauses == sorted(pauses) and pauses[0] < pauses[-1]


def test_a_server_that_stays_away_ends_the_demo_with_a_message_not_a_traceback(capsys):
    assert main(["--url", f"http://127.0.0.1:{free_port()}", "--hosts", "2", "--retry-for", "1"]) == 1
    err = capsys.readouterr().err
    assert "still unreachable after 1 s" in err and "Traceback" not in err
