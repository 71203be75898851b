"""The runner thread's loop: a failed tick is logged and retried, a database outage on one line."""

from __future__ import annotations

import logging
import threading

import pytest
from django.db import OperationalError

from jobs import runner


def loop_once_failing(monkeypatch, exc: Exception) -> None:
    stop = threading.Event()

    def tick() -> None:
        stop.set()
        raise exc

    monkeypatch.setattr(runner, "runner_tick", tick)
    monkeypatch.setattr(runner, "jobs_ensure", lambda now: None)
    runner.runner_loop(stop, 0)


def test_a_tick_that_finds_the_database_restarting_is_one_warning_line_without_a_traceback(monkeypatch, caplog):
    with caplog.at_level(logging.WARNING, logger="jobs.runner"):
        loop_once_failing(monkeypatch, OperationalError("terminating connection due to administrator command"))
    (record,) = caplog.records
    assert not record.exc_info
    assert "administrator command" in record.getMessage()


@pytest.mark.parametrize("exc", [ValueError("a bug"), KeyError("missing")])
def test_a_tick_that_fails_for_another_reason_keeps_its_traceback(monkeypatch, caplog, exc):
    with caplog.at_level(logging.WARNING, logger="jobs.runner"):
        loop_once_failing(monkeypatch, exc)
    (record,) = caplog.records
    assert record.exc_info
