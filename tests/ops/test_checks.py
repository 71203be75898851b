"""/readyz: database reachable and migrated, channel layer and shared cache reachable; JSON either way."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import orjson
import pytest
from django.db import connection

from tests.e2e.conftest import child_database_url, server_start, server_stop
from tests.e2e.tcp_proxy import TcpProxy

CHECKS = {"database", "migrations", "channel_layer", "cache", "jobs"}


@pytest.mark.django_db
def test_a_migrated_twin_with_its_channel_layer_is_ready(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == CHECKS
    assert all(check["ok"] and check["detail"] == "working" for check in body["checks"].values())
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.django_db
def test_a_pending_migration_makes_the_twin_not_ready_and_says_what_to_run(client, settings):
    settings.MIGRATION_MODULES = {"ops": "tests.ops.pending_migrations"}
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["error"] == "not_ready"
    assert "1 migration(s) not applied" in body["detail"]
    assert "manage.py migrate" in body["detail"]
    assert body["checks"]["migrations"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True


@pytest.mark.django_db
def test_an_unreachable_channel_layer_makes_the_twin_not_ready(client, settings):
    # Nothing listens on port 1: the Redis layer's first send is refused at once.
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]}}
    }
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["channel_layer"] == {
        "ok": False,
        "detail": "Unavailable: The channel layer cannot be reached (ConnectionError).",
        "seconds": body["checks"]["channel_layer"]["seconds"],
    }
    assert body["detail"].startswith("Not ready: channel_layer: ")


@pytest.mark.django_db
def test_an_unreachable_shared_cache_is_named_by_readyz(client, settings):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
    }
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["cache"]["ok"] is False
    assert body["checks"]["cache"]["detail"] == (
        "Unavailable: The shared cache (Redis) cannot be reached (ConnectionError); "
        "rate limits are counted per process meanwhile."
    )
    assert body["checks"]["database"]["ok"] is True


@pytest.mark.django_db
def test_a_listener_out_of_its_group_makes_the_channel_layer_check_fail(client, monkeypatch):
    from twin.live.listener import LISTENER

    monkeypatch.setattr(LISTENER, "in_group", False)
    monkeypatch.setattr(LISTENER, "detail", "the events listener cannot join its group (ConnectionError)")
    body = client.get("/readyz").json()
    assert body["checks"]["channel_layer"]["ok"] is False
    assert "the events listener cannot join its group" in body["checks"]["channel_layer"]["detail"]


def test_healthz_answers_without_touching_the_database(client):
    # No django_db mark: any database access here would raise.
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_the_seed_health_endpoint_still_answers_as_before(client):
    response = client.get("/api/health")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def get_json(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=15) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, orjson.loads(error.read())


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_readiness_fails_while_the_database_is_cut_and_recovers_when_it_returns(tmp_path, channel_prefix):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: the proxy stands in for a database server that goes away")
    db = connection.settings_dict
    proxy = TcpProxy((db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)))
    proxy.start()
    url = child_database_url().replace(f":{db['PORT'] or 5432}/", f":{proxy.port}/")
    server = server_start(tmp_path, CHANNEL_LAYER_PREFIX=channel_prefix, DATABASE_URL=url, DB_POOL_TIMEOUT="2")
    try:
        status, body = get_json(f"{server.url}/readyz")
        assert (status, body["status"]) == (200, "ready")

        proxy.stop()
        status, body = get_json(f"{server.url}/readyz")
        assert status == 503, body
        assert body["error"] == "not_ready"
        assert body["checks"]["database"]["ok"] is False
        assert body["detail"].startswith("Not ready: database: ")
        # The process itself is fine: a liveness probe must not restart it for the database's sake.
        assert get_json(f"{server.url}/healthz") == (200, {"status": "ok"})

        proxy.start()
        deadline = time.monotonic() + 30
        while (status := get_json(f"{server.url}/readyz")[0]) != 200:
            assert status == 503
            assert time.monotonic() < deadline, "still not ready 30 s after the database came back"
            time.sleep(0.5)
    finally:
        server_stop(server)
        proxy.stop()


@pytest.fixture
def a_registered_job():
    from jobs.registry import JOBS, job

    @job(name="tests.readyz", every_seconds=10.0)
    def readyz_job(now) -> str:
        return "ran"

    yield "tests.readyz"
    JOBS.pop("tests.readyz")


# Committed rows: the check reads them from a worker thread with a connection of its own.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_lagging_background_job_makes_the_twin_not_ready_and_a_punctual_one_does_not(client, a_registered_job):
    from datetime import timedelta

    from django.utils import timezone

    from jobs.models import Job

    Job.objects.create(name=a_registered_job, every_seconds=10.0, next_run_at=timezone.now() - timedelta(seconds=5))
    assert client.get("/readyz").status_code == 200

    Job.objects.filter(name=a_registered_job).update(next_run_at=timezone.now() - timedelta(seconds=120))
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["jobs"]["ok"] is False
    assert "Background jobs are lagging: tests.readyz 120 s late" in body["checks"]["jobs"]["detail"]
