"""Rack rules: a rack's power against its feeds, evaluated once per rack, so a rack's problem is one incident.

A rule whose subject is one of ``alerts.conditions.RACK_SUBJECTS`` watches racks,
not hosts: the hosts in a rack share its feeds, and an overloaded rack is one thing
to fix, so it gives one alert (``Alert.rack``, no host) and one notice, never one per
host in it. The values are those ``GET /api/racks/{name}/power`` shows, read for
every rack at once (``facility.selectors.racks_power``, a few queries whatever the
floor's size). The lifecycle is the host rules' (threshold, clear threshold, ``for``);
the evaluator (``alerts.evaluation.alerts_evaluate``) writes what this decides, in
its transaction, with the same transitions, notices and events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from alerts.conditions import COMPARE, RACK_AB_MARGIN, RACK_POWER_PERCENT, Scope
from alerts.models import Alert, AlertState, Rule
from facility.power import RackPowerDoc
from facility.selectors import racks_power
from hosts.models import Rack


@dataclass(frozen=True, slots=True)
class RackView:
    """One rack's power as the rack rules look at it."""

    id: int
    name: str
    site: str
    power: RackPowerDoc
    # Subject -> value; None when the rack has no such value (no feed, or not both A and B).
    values: dict[str, float | None]


def rack_values(power: RackPowerDoc) -> dict[str, float | None]:
    """The rack subjects' values of one rack's power document.

    1. ``rack_power_percent``: measured draw over the capacity with both feeds
       up, in percent; None for a rack without feeds.
    2. ``rack_ab_margin_watts``: the smallest of the failover margins, what the
       surviving feed has left if the other fails (negative: it would trip).
       Only over the failovers with a surviving feed: a rack with one feed has
       no A/B redundancy to measure (its ``abOk`` is false already), None.

    The draw is the facility's: each host's latest reading, whatever its
    status, as ``GET /api/racks/{name}/power`` counts it.
    """
    capacity = power["capacityWatts"]
    percent = round(power["measuredWatts"] / capacity * 100.0, 2) if capacity else None
    margins = [f["marginWatts"] for f in power["failover"] if f["survivingFeed"] is not None]
    return {RACK_POWER_PERCENT: percent, RACK_AB_MARGIN: min(margins) if margins else None}


def racks_view() -> list[RackView]:
    """Every rack's power now, by name (the facility's reads, and one query for the racks' ids)."""
    ids = dict(Rack.objects.values_list("name", "id"))
    return [
        RackView(id=ids[p["rack"]], name=p["rack"], site=p["site"] or "", power=p, values=rack_values(p))
        for p in racks_power()
        if p["rack"] in ids
    ]


def rack_labels(rule: Rule, rack: RackView) -> dict[str, str]:
    """A rack alert's labels: the rule's name, the rack and its site, the severity (no hostname), then the rule's."""
    return {"alertname": rule.name, "rack": rack.name, "site": rack.site, "severity": rule.severity, **rule.labels}


def _values(rule: Rule, rack: RackView, *, threshold: float) -> dict[str, Any]:
    """What made (or cleared) a rack alert: the value, the threshold it was held against, the rack's draw."""
    value = rack.values[rule.field]
    if value is None:
        return {"value": None}
    values: dict[str, Any] = {
        "value": value,
        "threshold": threshold,
        "measuredWatts": rack.power["measuredWatts"],
        "capacityWatts": rack.power["capacityWatts"],
    }
    if rule.field == RACK_AB_MARGIN:
        weakest = min(
            (f for f in rack.power["failover"] if f["survivingFeed"] is not None), key=lambda f: f["marginWatts"]
        )
        values["failedFeed"] = weakest["failedFeed"]
    return values


@dataclass
class RackChanges:
    """What the rack rules decided this run: alerts to open, to fire, to resolve, each with its values."""

    opened: list[tuple[Alert, dict[str, Any]]] = field(default_factory=list)
    fired: list[tuple[Alert, dict[str, Any]]] = field(default_factory=list)
    resolved: list[tuple[Alert, dict[str, Any]]] = field(default_factory=list)


def rack_rules_evaluate(
    rules: list[tuple[Rule, frozenset[str]]], open_alerts: dict[tuple[int, int], Alert], *, now: datetime
) -> RackChanges:
    """Evaluate the enabled rack rules (each with its racks' names) over their racks; nothing is written.

    1. Read every rack's power, unless there is no rack rule and no open rack alert.
    2. For each rule and rack in scope (all racks, or the rule's): a value
       beyond the threshold opens a pending alert (fired at once without
       ``for``); an open one fires once it has held ``for_seconds`` and
       resolves once its value is back past the clear threshold (or gone).
    3. Open alerts of rules disabled, or of racks no longer in scope, resolve.
    """
    changes = RackChanges()
    if not rules and not open_alerts:
        return changes
    racks = racks_view()
    seen: set[tuple[int, int]] = set()
    for rule, rack_names in rules:
        compare = COMPARE[rule.operator]
        threshold = rule.threshold if rule.threshold is not None else 0.0
        clear = rule.clear_threshold if rule.clear_threshold is not None else threshold
        scoped = racks if rule.scope == Scope.ALL else [r for r in racks if r.name in rack_names]
        for rack in scoped:
            value = rack.values[rule.field]
            alert = open_alerts.get((rule.pk, rack.id))
            if alert is None:
                if value is None or not compare(value, threshold):
                    continue
                values = _values(rule, rack, threshold=threshold)
                alert = Alert(
                    rule=rule,
                    rack_id=rack.id,
                    state=AlertState.PENDING,
                    starts_at=now,
                    values=values,
                    labels=rack_labels(rule, rack),
                )
                changes.opened.append((alert, values))
                if rule.for_seconds <= 0:
                    changes.fired.append((alert, values))
                continue
            seen.add((rule.pk, rack.id))
            # Hysteresis: an open alert is held against the clear threshold.
            if value is None or not compare(value, clear):
                changes.resolved.append((alert, _values(rule, rack, threshold=clear)))
            elif alert.state == AlertState.PENDING and (now - alert.starts_at).total_seconds() >= rule.for_seconds:
                changes.fired.append((alert, _values(rule, rack, threshold=clear)))
    for key, alert in open_alerts.items():
        if key not in seen:
            changes.resolved.append((alert, {"reason": "the rule is disabled or no longer covers this rack"}))
    return changes
