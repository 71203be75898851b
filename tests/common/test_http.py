"""common.http: bodies are bounded per request, and inflated bodies by a budget shared by all requests."""

from __future__ import annotations

import gzip
import threading
import time

import orjson
import pytest
from django.http import HttpRequest

from common import http
from common.http import InflationBudget, ServerBusy, inflation_budget
from tests.conftest import sample_dict

MB = 2**20


def test_a_budget_lets_requests_reserve_until_it_is_spent_then_they_wait(settings, monkeypatch):
    settings.TWIN_INFLATE_BUDGET_BYTES = 3 * MB
    monkeypatch.setattr(http, "INFLATE_WAIT_SECONDS", 0.2)
    budget = InflationBudget()
    first, second = HttpRequest(), HttpRequest()
    budget.reserve(first, 2 * MB)
    budget.reserve(second, MB)
    started = time.monotonic()
    with pytest.raises(ServerBusy):
        budget.reserve(second, MB)
    assert time.monotonic() - started >= 0.2
    assert budget.in_use == 3 * MB


def test_a_waiting_request_proceeds_as_soon_as_another_is_answered(settings, monkeypatch):
    settings.TWIN_INFLATE_BUDGET_BYTES = 2 * MB
    monkeypatch.setattr(http, "INFLATE_WAIT_SECONDS", 5)
    budget = InflationBudget()
    holder, waiter = HttpRequest(), HttpRequest()
    budget.reserve(holder, 2 * MB)
    threading.Timer(0.1, budget.release, args=[holder]).start()
    started = time.monotonic()
    budget.reserve(waiter, MB)
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
def test_a_gzip_body_that_inflates_beyond_its_declared_size_is_refused(client):
    import zlib

    honest = gzip.compress(orjson.dumps({"samples": [sample_dict()]}))
    lying = honest[:-4] + (10).to_bytes(4, "little")
    response = client.post(
        "/api/metrics/batch", data=lying, content_type="application/json", headers={"Content-Encoding": "gzip"}
    )
    assert (response.status_code, response.json()["error"]) == (400, "malformed_gzip")
    assert inflation_budget.in_use == 0
    assert zlib.decompress(honest, wbits=31)


@pytest.mark.usefixtures("open_twin")
def test_many_requests_waiting_for_the_budget_never_deadlock(settings):
    # Each request reserves its whole size at once and waits holding nothing:
    # 32 bodies of 3 MB with room for 3 at a time all get through. (Their
    # batches hold no sample, so they are refused after inflation, before any
    # database access; threads here have no test database.)
    from concurrent.futures import ThreadPoolExecutor

    from django.test import Client

    settings.TWIN_INFLATE_BUDGET_BYTES = 11 * MB
    settings.TWIN_MAX_BODY_BYTES = 10 * MB
    body = gzip.compress(orjson.dumps({"samples": [], "pad": " " * (3 * MB)}))

    def post(_: int) -> tuple[int, str]:
        response = Client().post(
            "/api/metrics/batch", data=body, content_type="application/json", headers={"Content-Encoding": "gzip"}
        )
        return response.status_code, response.json()["error"]

    with ThreadPoolExecutor(8) as pool:
        answers = set(pool.map(post, range(32)))
    assert answers == {(400, "malformed_batch")}, answers  # inflated and read; none was told to come back
    assert inflation_budget.in_use == 0


@pytest.mark.django_db
@pytest.mark.usefixtures("open_twin")
def test_a_declared_content_length_over_the_limit_is_refused_before_reading(client, settings):
    settings.TWIN_MAX_BODY_BYTES = 1000
    response = client.post(
        "/api/metrics/batch", data=b"{}", content_type="application/json", headers={"Content-Length": "5000"}
    )
    assert response.status_code == 413
