"""Checking and writing alert rules: one ``rule_check`` for the admin and the API alike."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from alerts.conditions import (
    METRIC_SUBJECTS,
    RACK_SCOPES,
    RACK_SUBJECTS,
    RISING,
    STATUS_VALUES,
    Kind,
    Operator,
    Scope,
    Severity,
)
from alerts.models import Rule
from common.errors import Refused
from common.text import text_problem
from hosts.models import Host, Rack

LABEL_NAME_MAX = 100
LABEL_VALUE_MAX = 500
LABELS_MAX = 30
# Labels the twin sets on every alert; a rule may not redefine them.
RESERVED_LABELS = ("alertname", "hostname", "rack", "severity")
# ... and on a rack's alert, its site too.
RESERVED_RACK_LABELS = (*RESERVED_LABELS, "site")
FOR_SECONDS_MAX = 7 * 86_400


class RuleInvalid(Refused):
    """``400 {"error": "invalid_rule", "detail": "...", "field": "<name>"}``: a rule that cannot be evaluated."""

    def __init__(self, field_name: str, detail: str) -> None:
        super().__init__("invalid_rule", detail, fields={"field": field_name})
        self.field = field_name


class RuleNotFound(Refused):
    status = 404

    def __init__(self, rule_id: int) -> None:
        super().__init__("not_found", f"No alert rule {rule_id}.")


@dataclass
class RuleSpec:
    """A rule as an operator writes it; racks and hosts by name."""

    name: str
    kind: str = Kind.METRIC
    field: str = ""
    operator: str = ""
    threshold: float | None = None
    clear_threshold: float | None = None
    status: str = ""
    for_seconds: float = 0.0
    severity: str = Severity.WARNING
    labels: dict[str, Any] = dataclasses.field(default_factory=dict)
    annotations: dict[str, Any] = dataclasses.field(default_factory=dict)
    scope: str = Scope.ALL
    racks: list[str] = dataclasses.field(default_factory=list)
    hosts: list[str] = dataclasses.field(default_factory=list)
    enabled: bool = True


def _finite(name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RuleInvalid(name, f"{name} is a number.")
    if not math.isfinite(value):
        raise RuleInvalid(name, f"{name} must be a finite number, not {value}.")


def _text_map(name: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise RuleInvalid(name, f"{name} is an object of names to text values.")
    if len(value) > LABELS_MAX:
        raise RuleInvalid(name, f"{name} has more than {LABELS_MAX} entries.")
    for key, text in value.items():
        if not isinstance(key, str) or not key or len(key) > LABEL_NAME_MAX or text_problem(key):
            raise RuleInvalid(name, f"{name}: {str(key)[:40]!r} is not a name (1-{LABEL_NAME_MAX} plain characters).")
        if not isinstance(text, str) or len(text) > LABEL_VALUE_MAX:
            raise RuleInvalid(name, f"{name}.{key} is text of at most {LABEL_VALUE_MAX} characters.")
        problem = text_problem(text) if text else None
        if problem:
            raise RuleInvalid(name, f"{name}.{key}: {problem}")


def rule_check(spec: RuleSpec, *, rule_id: int | None = None) -> None:
    """Refuse (``RuleInvalid``, naming the field) a rule the evaluator could not evaluate.

    1. A name, unique; a known kind, severity and scope.
    2. By kind: a metric rule names a known subject, an operator and a finite
       threshold, and its clear threshold lies on the clearing side (for ``>``
       at or below the threshold); a status rule names a status; an absent rule
       gives its seconds as a positive threshold.
    3. ``for_seconds`` within a week; labels and annotations are plain text,
       and labels leave the twin's own names alone.
    4. A rack subject (``rack_power_percent``, ``rack_ab_margin_watts``) watches
       racks: only scope all (every rack) or racks.
    5. Racks or hosts only for those scopes, and each exists.
    """
    if not isinstance(spec.name, str) or not spec.name.strip() or len(spec.name) > 100:
        raise RuleInvalid("name", "name is text of 1 to 100 characters.")
    problem = text_problem(spec.name)
    if problem:
        raise RuleInvalid("name", f"name: {problem}")
    if Rule.objects.filter(name=spec.name).exclude(pk=rule_id).exists():
        raise RuleInvalid("name", f"A rule named {spec.name!r} exists already.")
    for name, value, allowed in (
        ("kind", spec.kind, [k.value for k in Kind]),
        ("severity", spec.severity, [s.value for s in Severity]),
        ("scope", spec.scope, [s.value for s in Scope]),
    ):
        if value not in allowed:
            raise RuleInvalid(name, f"{name} {str(value)[:40]!r} is unknown; known: {', '.join(allowed)}.")
    for name in ("threshold", "clear_threshold", "for_seconds"):
        _finite(name, getattr(spec, name))

    if spec.kind == Kind.METRIC:
        if spec.field not in METRIC_SUBJECTS:
            raise RuleInvalid(
                "field", f"Unknown metric field {str(spec.field)[:64]!r}; known: {', '.join(METRIC_SUBJECTS)}."
            )
        if spec.operator not in [o.value for o in Operator]:
            raise RuleInvalid("operator", f"operator is one of {', '.join(o.value for o in Operator)}.")
        if spec.threshold is None:
            raise RuleInvalid("threshold", "A metric rule needs a threshold.")
        clear = spec.clear_threshold
        if clear is not None:
            rising = spec.operator in RISING
            if (rising and clear > spec.threshold) or (not rising and clear < spec.threshold):
                side = "at or below" if rising else "at or above"
                raise RuleInvalid(
                    "clear_threshold",
                    f"clear_threshold {clear} is on the wrong side: for {spec.operator} {spec.threshold} "
                    f"it must be {side} the threshold, or the alert could never clear.",
                )
    else:
        for name in ("field", "operator"):
            if getattr(spec, name):
                raise RuleInvalid(name, f"A {spec.kind} rule has no {name}.")
        if spec.clear_threshold is not None:
            raise RuleInvalid("clear_threshold", f"A {spec.kind} rule has no clear threshold.")
    if spec.kind == Kind.STATUS:
        if spec.status not in STATUS_VALUES:
            raise RuleInvalid("status", f"status is one of {', '.join(STATUS_VALUES)}.")
        if spec.threshold is not None:
            raise RuleInvalid("threshold", "A status rule has no threshold.")
    elif spec.status:
        raise RuleInvalid("status", f"A {spec.kind} rule has no status.")
    if spec.kind == Kind.ABSENT and (spec.threshold is None or spec.threshold <= 0):
        raise RuleInvalid("threshold", "An absent rule's threshold is the seconds without data, above 0.")

    if not 0 <= spec.for_seconds <= FOR_SECONDS_MAX:
        raise RuleInvalid("for_seconds", f"for_seconds is within 0..{FOR_SECONDS_MAX}.")
    _text_map("labels", spec.labels)
    _text_map("annotations", spec.annotations)
    rack_rule = spec.kind == Kind.METRIC and spec.field in RACK_SUBJECTS
    reserved = sorted(set(spec.labels) & set(RESERVED_RACK_LABELS if rack_rule else RESERVED_LABELS))
    if reserved:
        raise RuleInvalid("labels", f"labels may not set {', '.join(reserved)}: the twin sets them on each alert.")
    if rack_rule and spec.scope not in RACK_SCOPES:
        raise RuleInvalid(
            "scope",
            f"{spec.field} is a rack's value, evaluated once per rack: its scope is all (every rack) "
            f"or racks (the named racks), not {spec.scope}.",
        )

    for name, names, model, key, scope in (
        ("racks", spec.racks, Rack, "name", Scope.RACKS),
        ("hosts", spec.hosts, Host, "hostname", Scope.HOSTS),
    ):
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise RuleInvalid(name, f"{name} is a list of names.")
        if names and spec.scope != scope:
            raise RuleInvalid(name, f"{name} are given only with scope {scope.value}.")
        if spec.scope == scope:
            if not names:
                raise RuleInvalid(name, f"Scope {scope.value} needs at least one of {name}.")
            known = set(model.objects.filter(**{f"{key}__in": names}).values_list(key, flat=True))
            unknown = [n for n in names if n not in known]
            if unknown:
                raise RuleInvalid(name, f"Unknown {name}: {', '.join(unknown[:10])}.")


_COLUMNS = ("name", "kind", "field", "operator", "threshold", "clear_threshold", "status", "for_seconds", "severity")
_COLUMNS += ("labels", "annotations", "scope", "enabled")


def rule_spec_of(rule: Rule) -> RuleSpec:
    """A stored rule as a spec (to patch it, or to check it again)."""
    return RuleSpec(
        **{c: getattr(rule, c) for c in _COLUMNS},
        racks=list(rule.racks.values_list("name", flat=True)),
        hosts=list(rule.hosts.values_list("hostname", flat=True)),
    )


def rule_save(spec: RuleSpec, *, rule: Rule | None = None) -> Rule:
    """Check and store a rule (new, or ``rule`` replaced by ``spec``); refuses with ``RuleInvalid``.

    Its open alerts are re-evaluated under the new condition at the evaluator's next run.
    """
    rule_check(spec, rule_id=rule.pk if rule else None)
    with transaction.atomic():
        rule = rule or Rule()
        for column in _COLUMNS:
            setattr(rule, column, getattr(spec, column))
        rule.save()
        rule.racks.set(Rack.objects.filter(name__in=spec.racks))
        rule.hosts.set(Host.objects.filter(hostname__in=spec.hosts))
    return rule


def rule_delete(rule: Rule) -> None:
    """Delete a rule with its alerts and their history (disable it to keep them)."""
    rule.delete()
