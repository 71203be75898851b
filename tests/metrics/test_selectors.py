"""metrics.selectors: the snapshot's one read of every host answers what its ORM query answers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from hosts.models import Host
from metrics.selectors import HOST_ROW, host_rows, host_rows_query
from tests.conftest import ingest_at, sample_dict

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("open_twin")]


def test_host_rows_are_the_rows_of_their_orm_query():
    """``host_rows()`` (psycopg's timestamp loader on PostgreSQL) against ``list(host_rows_query())``."""
    now = timezone.now()
    for n in range(2):
        at = now - timedelta(seconds=20 - 10 * n)
        ingest_at([sample_dict("titan-01", at=at, net_bytes_tx=10**9 * n)], received_at=at)
    Host.objects.create(hostname="quiet-01")
    rows = host_rows()
    assert rows == list(host_rows_query())
    assert {len(row) for row in rows} == {len(HOST_ROW)}
    assert {"quiet-01", "titan-01"} <= {row[1] for row in rows}
