"""Reads of alerts and rules, as the API's documents."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alerts.models import Alert, AlertState, Rule
from alerts.schema import AlertDocument, AlertList, RuleDocument, RuleList
from common.formats import iso_utc

HISTORY_LIMIT_DEFAULT = 100
HISTORY_LIMIT_MAX = 1000


def annotations_render(annotations: dict[str, str], labels: dict[str, str], values: dict[str, Any]) -> dict[str, str]:
    """Fill ``{hostname}``, ``{rack}``, ``{value}`` (and any label's ``{name}``) in each annotation.

    Plain replacement, not ``str.format``: an operator's text may hold braces,
    and format fields could reach attributes.
    """
    fills = {**labels, "value": "" if values.get("value") is None else f"{values['value']:g}"}
    rendered = {}
    for key, text in annotations.items():
        for name, value in fills.items():
            text = text.replace("{" + name + "}", str(value))
        rendered[key] = text
    return rendered


def alert_document(alert: Alert) -> AlertDocument:
    """One alert (its rule and host read with it)."""
    labels = alert.labels
    return {
        "id": alert.pk,
        "rule": alert.rule.name,
        "hostname": alert.host.hostname,
        "rack": labels.get("rack") or None,
        "state": alert.state,  # type: ignore[typeddict-item]
        "severity": labels.get("severity", alert.rule.severity),
        "activeAt": iso_utc(alert.starts_at),
        "startsAt": iso_utc(alert.fired_at or alert.starts_at),
        "endsAt": iso_utc(alert.ends_at) if alert.ends_at else None,
        "values": alert.values,
        "labels": labels,
        "annotations": annotations_render(alert.rule.annotations, labels, alert.values),
    }


def alerts_firing() -> AlertList:
    """What fires now, oldest first."""
    alerts = Alert.objects.filter(state=AlertState.FIRING).select_related("rule", "host").order_by("fired_at", "id")
    return {"alerts": [alert_document(a) for a in alerts]}


@dataclass(frozen=True)
class AlertFilters:
    """The history's filters: a host, a rule, and the alerts active at some time in [since, until)."""

    host: str | None = None
    rule: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def alerts_history(*, filters: AlertFilters, limit: int) -> AlertList:
    """Alerts of any state, newest first, that were active at some moment in the range."""
    alerts = Alert.objects.select_related("rule", "host").order_by("-starts_at", "-id")
    if filters.host is not None:
        alerts = alerts.filter(host__hostname=filters.host)
    if filters.rule is not None:
        alerts = alerts.filter(rule__name=filters.rule)
    if filters.until is not None:
        alerts = alerts.filter(starts_at__lt=filters.until)
    if filters.since is not None:
        alerts = alerts.exclude(ends_at__lt=filters.since)
    return {"alerts": [alert_document(a) for a in alerts[:limit]]}


def rule_document(rule: Rule) -> RuleDocument:
    """One rule (racks and hosts by name)."""
    return {
        "id": rule.pk,
        "name": rule.name,
        "enabled": rule.enabled,
        "kind": rule.kind,  # type: ignore[typeddict-item]
        "field": rule.field,
        "operator": rule.operator,
        "threshold": rule.threshold,
        "clear_threshold": rule.clear_threshold,
        "status": rule.status,
        "for_seconds": rule.for_seconds,
        "severity": rule.severity,  # type: ignore[typeddict-item]
        "labels": rule.labels,
        "annotations": rule.annotations,
        "scope": rule.scope,  # type: ignore[typeddict-item]
        "racks": sorted(r.name for r in rule.racks.all()),
        "hosts": sorted(h.hostname for h in rule.hosts.all()),
    }


def rules_list() -> RuleList:
    """Every rule, by name."""
    return {"rules": [rule_document(r) for r in Rule.objects.prefetch_related("racks", "hosts")]}


def rule_get(*, rule_id: int) -> Rule | None:
    """A rule by id, or None."""
    return Rule.objects.prefetch_related("racks", "hosts").filter(pk=rule_id).first()
