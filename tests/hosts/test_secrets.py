"""Secrets are shown once to whom they belong and never written to the logs."""

from __future__ import annotations

import logging

import pytest

from tests.conftest import sample_dict

pytestmark = pytest.mark.django_db


def test_no_secret_reaches_the_logs(caplog, register, enrollment_key, make_agent, settings):
    caplog.set_level(logging.DEBUG)
    settings.TWIN_AGENT_AUTH = "signed"
    agent = make_agent("titan-01")
    agent.post([sample_dict("titan-01")])
    agent.secret = "0" * 64
    agent.post([sample_dict("titan-01")])  # a refused signature is logged as a warning
    register("titan-02", key="tek_wrong")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "Unauthorized" in logged
    for secret in (enrollment_key, agent.registration["signingSecret"]):
        assert secret not in logged
