"""Shared test helpers: sample factories, a batch poster, the database in use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone


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
def is_postgres() -> bool:
    return connection.vendor == "postgresql"
