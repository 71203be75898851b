"""Limits on what a batch may be: size, sample count, encoding, rate."""

from __future__ import annotations

import gzip

import orjson
import pytest

from metrics.models import Sample
from tests.conftest import sample_dict

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("open_twin")]


def post_raw(client, body: bytes, **headers):
    return client.post("/api/metrics/batch", data=body, content_type="application/json", headers=headers)


def test_a_body_over_the_size_limit_is_a_413(client, settings):
    settings.TWIN_MAX_BODY_BYTES = settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = orjson.dumps({"samples": [sample_dict(f"h-{i}") for i in range(100)]})
    response = post_raw(client, body)
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert not Sample.objects.exists()


def test_more_samples_than_the_batch_limit_is_a_413(client, settings):
    settings.TWIN_MAX_BATCH_SAMPLES = 3
    response = post_raw(client, orjson.dumps({"samples": [sample_dict(f"h-{i}") for i in range(4)]}))
    assert response.status_code == 413
    assert response.json()["error"] == "batch_too_large"
    assert not Sample.objects.exists()


def test_a_gzip_body_is_accepted(client):
    body = gzip.compress(orjson.dumps({"samples": [sample_dict()]}))
    response = post_raw(client, body, **{"Content-Encoding": "gzip"})
    assert response.status_code == 202
    assert response.json()["accepted"] == 1


def test_a_gzip_bomb_is_refused_without_inflating_it(client, settings):
    settings.TWIN_MAX_BODY_BYTES = 1_000_000
    bomb = gzip.compress(b'{"samples": [' + b" " * 50_000_000 + b"]}")
    assert len(bomb) < 100_000
    response = post_raw(client, bomb, **{"Content-Encoding": "gzip"})
    assert response.status_code == 413


def test_a_corrupt_gzip_body_is_a_400(client):
    response = post_raw(client, b"\x1f\x8b\x08\x00garbage", **{"Content-Encoding": "gzip"})
    assert (response.status_code, response.json()["error"]) == (400, "malformed_gzip")


def test_a_truncated_gzip_body_is_a_400(client):
    body = gzip.compress(orjson.dumps({"samples": [sample_dict()]}))
    response = post_raw(client, body[:-12], **{"Content-Encoding": "gzip"})
    assert (response.status_code, response.json()["error"]) == (400, "malformed_gzip")


def test_another_content_encoding_is_a_415(client):
    response = post_raw(client, orjson.dumps({"samples": []}), **{"Content-Encoding": "br"})
    assert response.status_code == 415


def test_a_host_over_its_rate_gets_a_429_with_retry_after(client, settings):
    settings.TWIN_INGEST_RATE_PER_MINUTE = 3
    body = orjson.dumps({"samples": [sample_dict()]})
    for _ in range(3):
        assert post_raw(client, body).status_code == 202
    response = post_raw(client, body)
    assert response.status_code == 429
    assert response.json()["error"] == "throttled"
    assert int(response.headers["Retry-After"]) > 0


def test_signed_hosts_are_limited_each_on_their_own(make_agent, settings):
    settings.TWIN_AGENT_AUTH = "signed"
    settings.TWIN_INGEST_RATE_PER_MINUTE = 2
    a, b = make_agent("host-a"), make_agent("host-b")
    assert [a.post().status_code for _ in range(3)] == [202, 202, 429]
    assert b.post().status_code == 202


def test_a_signed_gzip_batch_is_signed_over_the_bytes_sent(make_agent, settings):
    settings.TWIN_AGENT_AUTH = "signed"
    agent = make_agent()
    body = gzip.compress(agent.body([sample_dict(agent.hostname)]))
    response = agent.send(body, {**agent.headers(body), "Content-Encoding": "gzip"})
    assert response.status_code == 202 and response.json()["accepted"] == 1
