"""The command lifecycle's metric: invocations entering each state, counted once committed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from commands.models import Cause
from commands.services import invocations_dispatch
from hosts.models import Host
from tests.commands.test_services import hosts_in_rack, report, send
from tests.ops.test_prometheus import scrape, value

pytestmark = pytest.mark.django_db


@pytest.fixture
def titan() -> Host:
    return hosts_in_rack("titan-01")["titan-01"]


def transitions(client) -> dict[tuple[str, str], float]:
    samples = scrape(client)
    return {
        (dict(labels)["state"], dict(labels)["cause"]): amount
        for (name, labels), amount in samples.items()
        if name == "twin_command_invocation_transitions_total"
    }


def test_each_move_of_an_invocation_is_counted_by_state_and_cause(
    client, operator, titan, django_capture_on_commit_callbacks
):
    before = transitions(client)
    start = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        command = send(operator.user, start)
        invocations_dispatch(host_id=titan.pk, now=start + timedelta(seconds=1), cause=Cause.POLL)
        report(titan, command, start + timedelta(seconds=2), status="running")
        report(titan, command, start + timedelta(seconds=3), exit_code=0, output="pong")
    after = transitions(client)
    grown = {key: after.get(key, 0) - before.get(key, 0) for key in after}
    assert {key: n for key, n in grown.items() if n} == {
        ("queued", "created"): 1,
        ("dispatched", "poll"): 1,
        ("running", "agent"): 1,
        ("succeeded", "agent"): 1,
    }


def test_a_move_rolled_back_is_not_counted(client, operator, titan, django_capture_on_commit_callbacks):
    before = value(scrape(client), "twin_command_invocation_transitions_total", state="queued", cause="created")
    with django_capture_on_commit_callbacks(execute=True):
        try:
            with transaction.atomic():
                send(operator.user, timezone.now())
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
    after = value(scrape(client), "twin_command_invocation_transitions_total", state="queued", cause="created")
    assert after == before
