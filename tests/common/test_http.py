"""common.http: bodies are bounded per request, and inflated bodies by a budget shared by all requests."""

from __future__ import annotations

import gzip
import threading
import time

import orjson
import pytest
from django.http import HttpRequest

from common import http
from common.http import INFLATE_STEP, InflationBudget, ServerBusy, inflation_budget
from tests.conftest import sample_dict


def test_a_budget_lets_requests_reserve_until_it_is_spent_then_they_wait(settings, monkeypatch):
    settings.TWIN_INFLATE_BUDGET_BYTES = 3 * INFLATE_STEP
    monkeypatch.setattr(http, "INFLATE_WAIT_SECONDS", 0.2)
    budget = InflationBudget()
    first, second = HttpRequest(), HttpRequest()
    budget.reserve(first, 2 * INFLATE_STEP)
    budget.reserve(second, INFLATE_STEP)
    started = time.monotonic()
    with pytest.raises(ServerBusy):
        budget.reserve(second, INFLATE_STEP)
    assert time.monotonic() - started >= 0.2
    assert budget.in_use == 3 * INFLATE_STEP


def test_a_waiting_request_proceeds_as_soon_as_another_is_answered(settings, monkeypatch):
    settings.TWIN_INFLATE_BUDGET_BYTES = 2 * INFLATE_STEP
    monkeypatch.setattr(http, "INFLATE_WAIT_SECONDS", 5)
    budget = InflationBudget()
    holder, waiter = HttpRequest(), HttpRequest()
    budget.reserve(holder, 2 * INFLATE_STEP)
    threading.Timer(0.1, budget.release, args=[holder]).start()
    started = time.monotonic()
    budget.reserve(waiter, INFLATE_STEP)
    assert time.monotonic() - started < 2
    budget.release(waiter)
    assert budget.in_use == 0


@pytest.mark.django_db
@pytest.mark.usefixtures("open_twin")
def test_what_a_request_inflated_is_given_back_once_it_is_answered(client):
    body = gzip.compress(orjson.dumps({"samples": [sample_dict()]}))
    before = inflation_budget.in_use
    response = client.post(
        "/api/metrics/batch", data=body, content_type="application/json", headers={"Content-Encoding": "gzip"}
    )
    assert response.status_code == 202
    assert inflation_budget.in_use == before


@pytest.mark.django_db
@pytest.mark.usefixtures("open_twin")
def test_a_full_budget_answers_503_with_retry_after(client, settings, monkeypatch):
    monkeypatch.setattr(http, "INFLATE_WAIT_SECONDS", 0.1)
    holder = HttpRequest()
    inflation_budget.reserve(holder, settings.TWIN_INFLATE_BUDGET_BYTES)
    try:
        body = gzip.compress(orjson.dumps({"samples": [sample_dict()]}))
        response = client.post(
            "/api/metrics/batch", data=body, content_type="application/json", headers={"Content-Encoding": "gzip"}
        )
    finally:
        inflation_budget.release(holder)
    assert response.status_code == 503
    assert response.json()["error"] == "server_busy"
    assert int(response["Retry-After"]) > 0
    assert inflation_budget.in_use == 0


@pytest.mark.django_db
@pytest.mark.usefixtures("open_twin")
def test_a_declared_content_length_over_the_limit_is_refused_before_reading(client, settings):
    settings.TWIN_MAX_BODY_BYTES = 1000
    response = client.post(
        "/api/metrics/batch", data=b"{}", content_type="application/json", headers={"Content-Length": "5000"}
    )
    assert response.status_code == 413
