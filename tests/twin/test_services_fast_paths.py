"""twin.services: the status recorder's plain-SQL reads answer what the ORM queries they stand for answer.

The pairs, on PostgreSQL and SQLite: ``_hosts_read`` against
``Host.objects.values_list(..., "latest__last_seen", "status_record__status", ...)``;
``_first_arrivals`` against ``Sample.objects.filter(...).aggregate(Min("received_at"))`` per host.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import Min

from hosts.models import Host
from metrics.models import Sample
from tests.conftest import ingest_at, sample_dict
from twin.models import HostStatusRecord
from twin.services import _first_arrivals, _Host, _hosts_read

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("open_twin")]

START = datetime(2026, 3, 1, 12, 0, 0, 123_456, tzinfo=UTC)


def _fleet() -> list[Host]:
    for i, hostname in enumerate(("titan-01", "titan-02")):
        for n in range(4):
            at = START + timedelta(seconds=10 * n + i)
            ingest_at([sample_dict(hostname, at=at)], received_at=at + timedelta(milliseconds=300 + n))
    Host.objects.create(hostname="spine-01", is_virtual=True)
    Host.objects.create(hostname="quiet-01")
    one = Host.objects.get(hostname="titan-01")
    HostStatusRecord.objects.create(host=one, status="offline", since=START, seen=START + timedelta(seconds=15))
    return list(Host.objects.order_by("id"))


def test_the_recorders_host_rows_are_what_the_orm_reads():
    """``_hosts_read()`` against ``Host.objects.order_by("id").values_list(...)`` across latest values and records."""
    _fleet()
    orm = Host.objects.order_by("id").values_list(
        "id",
        "hostname",
        "is_virtual",
        "created_at",
        "latest__last_seen",
        "status_record__status",
        "status_record__seen",
    )
    assert _hosts_read() == list(orm)


def test_first_arrivals_are_the_orms_earliest_receipt_after_the_record():
    """``_first_arrivals(hosts, since)`` against ``Sample.objects.filter(received_at__gt=...).aggregate(Min(...))``."""
    _fleet()
    hosts = [_Host(*row) for row in _hosts_read()]
    since = START + timedelta(seconds=5)
    fast = _first_arrivals(hosts=hosts, since=since)
    orm = {}
    for h in hosts:
        after = max(since, h.recorded_seen) if h.recorded_seen else since
        first = Sample.objects.filter(host_id=h.id, received_at__gt=after).aggregate(first=Min("received_at"))["first"]
        if first is not None:
            orm[h.id] = first
    assert fast == orm
    assert len(orm) == 2
