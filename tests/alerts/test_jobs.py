"""The evaluation job keeps within its share of a core, whatever the fleet's size."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.jobs import alerts_evaluate_job
from alerts.models import Evaluation
from alerts.selectors import evaluation_wait

pytestmark = pytest.mark.django_db


def test_a_run_that_cost_a_fifth_of_a_second_is_followed_no_sooner_than_four_seconds_later(settings):
    settings.TWIN_ALERTS_CPU_SHARE = 0.05
    now = timezone.now()
    alerts_evaluate_job(now)
    Evaluation.objects.filter(pk=1).update(cost_seconds=0.2)  # as at 10,000 hosts
    assert alerts_evaluate_job(now + timedelta(seconds=1)).startswith("skipped: within the CPU budget, next in 3.0 s")
    assert Evaluation.objects.get(pk=1).evaluated_at == now  # the skipped tick evaluated nothing
    assert "alert transition(s)" in alerts_evaluate_job(now + timedelta(seconds=4))
    assert Evaluation.objects.get(pk=1).evaluated_at == now + timedelta(seconds=4)


def test_a_cheap_run_leaves_the_next_tick_free():
    now = timezone.now()
    alerts_evaluate_job(now)
    Evaluation.objects.filter(pk=1).update(cost_seconds=0.001)
    assert evaluation_wait(now=now + timedelta(seconds=1), share=0.05) == 0.0


def test_no_budget_and_no_run_yet_never_wait():
    now = timezone.now()
    assert evaluation_wait(now=now, share=0.05) == 0.0
    Evaluation.objects.create(pk=1, evaluated_at=now, cost_seconds=10.0)
    assert evaluation_wait(now=now, share=0.0) == 0.0


def test_each_run_records_its_own_cpu_cost():
    alerts_evaluate_job(timezone.now())
    assert Evaluation.objects.get(pk=1).cost_seconds > 0
