"""A host flooding new series holds no lock that another host's batch waits for (PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import timedelta

import msgspec
import orjson
import pytest
from django.db import connection, transaction
from django.utils import timezone

from metrics.models import SeriesSample
from metrics.services import samples_ingest
from tests.conftest import ingest_at, sample_dict

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="row locks are PostgreSQL's"),
]


def _metrics(prefix: str, count: int) -> list[dict]:
    return [{"name": "req", "labels": {"id": f"{prefix}{i}"}, "value": 1.0} for i in range(count)]


def test_a_capped_hosts_open_batch_does_not_hold_up_another_hosts_new_series(settings):
    settings.TWIN_SERIES_MAX_PER_HOST = 5
    at = timezone.now() - timedelta(minutes=10)
    ingest_at([sample_dict("noisy-01", at=at, metrics=_metrics("n", 5))])
    ingest_at([sample_dict("quiet-01", at=at, metrics=_metrics("q", 2))])
    inside, release = threading.Event(), threading.Event()
    refused: list[int] = []

    def flood() -> None:
        # A flood batch of the capped host, its transaction kept open with every lock it took.
        try:
            with transaction.atomic():
                raw = [
                    msgspec.Raw(
                        orjson.dumps(sample_dict("noisy-01", at=at + timedelta(seconds=10), metrics=_metrics("x", 500)))
                    )
                ]
                result = samples_ingest(raw_samples=raw, received_at=timezone.now())
                refused.append(sum(len(r.metrics) for r in result.metrics_refused))
                inside.set()
                release.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=flood)
    thread.start()
    try:
        assert inside.wait(30)
        with connection.cursor() as cursor:
            # Waiting on a lock fails this test instead of hanging it.
            cursor.execute("SET lock_timeout = '5s'")
        result = ingest_at([sample_dict("quiet-01", at=at + timedelta(seconds=10), metrics=_metrics("q", 4))])
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = 0")
        release.set()
        thread.join(30)
    assert refused == [500]
    assert result.accepted == 1 and not result.metrics_refused
    assert SeriesSample.objects.filter(series__host__hostname="quiet-01").count() == 6
