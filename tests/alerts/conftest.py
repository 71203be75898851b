"""Helpers of the alerts tests: rules made through the real service, the evaluator at chosen times."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from alerts.evaluation import alerts_evaluate
from alerts.models import Rule
from alerts.rules import RuleSpec, rule_save


@pytest.fixture
def only_rules(db):
    """Disable the shipped rules and make the given ones (RuleSpec keyword dicts)."""

    def make(*specs: dict[str, Any]) -> list[Rule]:
        Rule.objects.update(enabled=False)
        return [rule_save(RuleSpec(**spec)) for spec in specs]

    return make


class Clock:
    """The evaluator run at a moment that moves forward in the test."""

    def __init__(self) -> None:
        self.now: datetime = timezone.now()

    def evaluate(self, after_seconds: float = 0.0):
        self.now += timedelta(seconds=after_seconds)
        return alerts_evaluate(now=self.now)


@pytest.fixture
def clock() -> Clock:
    return Clock()
