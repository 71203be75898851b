"""Shared test helpers: sample factories, a batch poster, the database in use."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from django.core.management.base import CommandError
from django.test import Client, testcases
from django.utils import timezone
from hypothesis import settings as hypothesis_settings

# Property tests and the schema fuzzer draw the same examples on every run, so a
# red CI is a regression, not a new find; FUZZ_EXPLORE=1 draws fresh ones.
hypothesis_settings.register_profile("ci", derandomize=True)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile("explore" if os.environ.get("FUZZ_EXPLORE") else "ci")


# A transactional test ends with a TRUNCATE of every table, while the live server of its module
# (one shared server, tests/e2e) keeps running its jobs and refreshes: PostgreSQL may pick the
# TRUNCATE as a deadlock's victim. The server retries its side; the teardown retries its own.
_FLUSH_ATTEMPTS = 5
_fixture_teardown = testcases.TransactionTestCase._fixture_teardown


def _fixture_teardown_retrying_deadlocks(self: testcases.TransactionTestCase) -> None:
    for attempt in range(_FLUSH_ATTEMPTS):
        try:
            return _fixture_teardown(self)
        except CommandError as exc:
            if "deadlock detected" not in str(exc) or attempt == _FLUSH_ATTEMPTS - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


testcases.TransactionTestCase._fixture_teardown = _fixture_teardown_retrying_deadlocks


def pytest_report_header(config: pytest.Config) -> str:
    # .ci/run reads this line to prove the suite ran on PostgreSQL.
    from django.conf import settings

    return f"database vendor: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def sample_dict(hostname: str = "titan-01", at: datetime | None = None, **overrides: Any) -> dict[str, Any]:
    """A valid sample in the seed's shape; ``at`` defaults to now."""
    sample: dict[str, Any] = {
        "hostname": hostname,
        "timestamp": iso(at or timezone.now()),
        "cpu_load": 42.5,
        "memory_used_percent": 63.2,
        "load_average": 1.72,
        "uptime_seconds": 7200,
        "agent_version": "0.1.0-dev",
        "platform": "Linux-x86_64",
        "net_bytes_tx": 1250000000,
        "net_bytes_rx": 980000000,
        "rack": "R1",
        "position": {"x": 1.2, "y": 0.4, "z": -0.8},
    }
    sample.update(overrides)
    return sample


def seconds_ago(seconds: float) -> datetime:
    return timezone.now() - timedelta(seconds=seconds)


@pytest.fixture
def post_batch(client: Client):
    """POST samples (or any raw body) to the batch endpoint; returns the response."""

    def post(samples: list[dict[str, Any]] | None = None, *, body: bytes | None = None, **extra: Any):
        payload = body if body is not None else orjson.dumps({"samples": samples or []})
        return client.post("/api/metrics/batch", data=payload, content_type="application/json", **extra)

    return post


@pytest.fixture
def open_twin(settings):
    """The seed's world: unsigned batches accepted, the twin readable by anyone."""
    settings.TWIN_AGENT_AUTH = "open"
    settings.TWIN_PUBLIC_READ = True


class SigningAgent:
    """A registered host's agent as the docs describe it: signs each batch, numbers it in a session."""

    def __init__(self, client: Client, registration: dict[str, Any]) -> None:
        self.client = client
        self.registration = registration
        self.hostname: str = registration["hostname"]
        self.key_id: str = registration["keyId"]
        self.secret: str = registration["signingSecret"]
        self.session = "session-" + registration["keyId"][-6:]
        self.sequence = 0

    def body(self, samples: list[dict[str, Any]], **envelope: Any) -> bytes:
        self.sequence += 1
        return orjson.dumps({"agent_session": self.session, "sequence": self.sequence, "samples": samples, **envelope})

    def headers(self, body: bytes, *, timestamp: int | None = None, key_id: str | None = None) -> dict[str, str]:
        from hosts.credentials import signature_compute

        stamp = str(timestamp if timestamp is not None else int(time.time()))
        return {
            "X-Twin-Key-Id": key_id or self.key_id,
            "X-Twin-Timestamp": stamp,
            "X-Twin-Signature": signature_compute(secret=self.secret, timestamp=stamp, body=body),
        }

    def send(self, body: bytes, headers: dict[str, str]):
        return self.client.post("/api/metrics/batch", data=body, content_type="application/json", headers=headers)

    def post(self, samples: list[dict[str, Any]] | None = None, **envelope: Any):
        body = self.body(samples if samples is not None else [sample_dict(self.hostname)], **envelope)
        return self.send(body, self.headers(body))

    def get(self, path: str, *, timestamp: int | None = None):
        """A signed GET: the signature covers ``"<timestamp>." + "GET " + <path with query>``."""
        headers = self.headers(f"GET {path}".encode(), timestamp=timestamp)
        return self.client.get(path, headers=headers)

    def post_json(self, path: str, document: dict[str, Any]):
        """A signed POST of a JSON document to any agent endpoint (a command's result, say)."""
        body = orjson.dumps(document)
        return self.client.post(path, data=body, content_type="application/json", headers=self.headers(body))


@pytest.fixture
def enrollment_key(db) -> str:
    from hosts.services import enrollment_key_create

    return enrollment_key_create(name="tests")[1]


@pytest.fixture
def register(client: Client, enrollment_key: str):
    """Register a host through the API; returns the response."""

    def register(hostname: str = "titan-01", *, key: str | None = None, **fields: Any):
        body = {"hostname": hostname, "platform": "Linux-x86_64", "agent_version": "1.0.0", **fields}
        return client.post(
            "/api/hosts/register",
            data=orjson.dumps(body),
            content_type="application/json",
            headers={"Authorization": f"Bearer {key or enrollment_key}"},
        )

    return register


@pytest.fixture
def make_agent(client: Client, register):
    """Register a host and return its signing agent."""

    def make(hostname: str = "titan-01") -> SigningAgent:
        response = register(hostname)
        assert response.status_code in (200, 201), response.content
        return SigningAgent(client, response.json())

    return make


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate-limit counters live in the cache (and per process during an outage); each test starts with none."""
    from django.core.cache import cache

    from common.throttling import rate_limits_forget

    cache.clear()
    rate_limits_forget()
    yield
    cache.clear()
    rate_limits_forget()


def ingest_at(samples: list[dict[str, Any]], *, received_at: datetime | None = None):
    """Store samples through the real ingest service, as received at ``received_at`` (default now)."""
    import msgspec

    from metrics.services import samples_ingest

    raw = [msgspec.Raw(orjson.dumps(s)) for s in samples]
    result = samples_ingest(raw_samples=raw, received_at=received_at or timezone.now())
    assert not result.rejected, result.rejected
    return result
