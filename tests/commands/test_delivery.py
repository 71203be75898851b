"""commands.services.delivery: the fast check behind every batch answers what the ORM query it stands for answers."""

from __future__ import annotations

from datetime import timedelta
from itertools import product

import pytest
from django.db import transaction
from django.utils import timezone

from commands.models import Command, Invocation, InvocationState
from commands.services.delivery import deliverable_exists, invocations_deliverable
from hosts.models import Host
from hosts.services import hosts_lock_or_create

pytestmark = pytest.mark.django_db

# Every state, released or not, with a timeout before, at or after the moment asked about (or none).
SHAPES = list(product(InvocationState.values, (False, True), (None, -1.0, 0.0, 1.0)))


def _host(hostname: str) -> Host:
    with transaction.atomic():
        hosts_lock_or_create(hostnames=[hostname])
    return Host.objects.get(hostname=hostname)


def _invocation(host: Host, *, state: str, released: bool, timeout_in: float | None, now) -> Invocation:
    command = Command.objects.create(
        action="ping",
        targets={"hosts": [host.hostname]},
        issued_by_name="alice",
        issued_at=now,
        timeout_seconds=60,
        delivery_timeout_seconds=60,
        max_concurrency=1,
        max_errors=0,
    )
    return Invocation.objects.create(
        command=command,
        host=host,
        hostname=host.hostname,
        state=state,
        queued_at=now,
        released_at=now if released else None,
        timeout_at=None if timeout_in is None else now + timedelta(seconds=timeout_in),
    )


@pytest.mark.parametrize(("state", "released", "timeout_in"), SHAPES)
def test_the_fast_check_agrees_with_the_orm_query_for_every_shape_of_invocation(state, released, timeout_in):
    now = timezone.now()
    host, other = _host("titan-01"), _host("titan-02")
    _invocation(host, state=state, released=released, timeout_in=timeout_in, now=now)
    for asking in (host, other):
        expected = invocations_deliverable(host_id=asking.pk, now=now).exists()
        assert deliverable_exists(host_id=asking.pk, now=now) is expected
    # Each shape stands for a known answer, so the check is not vacuous.
    deliverable = (state == "queued" and released) or (state == "dispatched" and (timeout_in or 0) > 0)
    assert deliverable_exists(host_id=host.pk, now=now) is deliverable
    assert deliverable_exists(host_id=other.pk, now=now) is False


def test_the_fast_check_compares_times_to_the_microsecond_as_the_orm_does():
    now = timezone.now()
    host = _host("titan-01")
    invocation = _invocation(host, state="dispatched", released=True, timeout_in=0.000_001, now=now)
    for moment in (now, invocation.timeout_at, invocation.timeout_at - timedelta(microseconds=1)):
        expected = invocations_deliverable(host_id=host.pk, now=moment).exists()
        assert deliverable_exists(host_id=host.pk, now=moment) is expected
    assert deliverable_exists(host_id=host.pk, now=now) is True
    assert deliverable_exists(host_id=host.pk, now=invocation.timeout_at) is False
