"""Rate limits never fail a request: with the shared cache (Redis) unreachable, each process counts on its own."""

from __future__ import annotations

import logging

import pytest

from common import throttling
from tests.conftest import sample_dict
from tests.e2e.conftest import free_port
from tests.ops.test_prometheus import scrape, value

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("open_twin")]

LOGGER = "common.throttling"


@pytest.fixture
def unreachable_cache(settings):
    """The shared cache pointed at a loopback port nothing listens on: every read is refused."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
            "OPTIONS": {"socket_connect_timeout": 1.0, "socket_timeout": 1.0},
        }
    }


def local_decisions(client) -> float:
    return value(scrape(client), "twin_rate_limit_local_decisions_total", scope="ingest")


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


def test_a_batch_is_accepted_while_the_rate_limit_cache_is_unreachable(client, post_batch, unreachable_cache, caplog):
    before = local_decisions(client)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        responses = [post_batch([sample_dict("redis-gone-01", cpu_load=float(i))]) for i in range(3)]
    assert [r.status_code for r in responses] == [202, 202, 202]
    assert local_decisions(client) - before == 3
    # Once per outage, not once per request.
    logged = warnings_of(caplog)
    assert len(logged) == 1
    assert "rate limits are counted per process" in logged[0]


def test_the_local_limit_still_throttles_during_the_outage(client, post_batch, unreachable_cache, settings):
    settings.TWIN_INGEST_RATE_PER_MINUTE = 2
    statuses = [post_batch([sample_dict("redis-gone-02", cpu_load=float(i))]).status_code for i in range(3)]
    assert statuses == [202, 202, 429]


def test_the_shared_cache_counts_again_once_it_answers(client, post_batch, settings, caplog, monkeypatch):
    monkeypatch.setattr(throttling, "RETRY_SECONDS", 0.0)
    working = settings.CACHES
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
        }
    }
    assert post_batch([sample_dict("redis-back-01")]).status_code == 202
    assert throttling.OUTAGE.down_since is not None
    settings.CACHES = working
    before = local_decisions(client)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert post_batch([sample_dict("redis-back-01", cpu_load=2.0)]).status_code == 202
    assert throttling.OUTAGE.down_since is None
    assert local_decisions(client) == before
    assert any("answers again" in r.getMessage() for r in caplog.records if r.name == LOGGER)
