"""Reads of alerts and rules, as the API's documents."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q

from alerts.models import Alert, AlertState, AlertTransition, Evaluation, Rule
from alerts.schema import AlertDocument, AlertList, AlertReference, RuleDocument, RuleList
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


def alert_reference(alert: Alert) -> AlertReference:
    """An alert named by id, rule and host (from its labels, fixed when it opened: no query)."""
    return {"id": alert.pk, "rule": alert.labels.get("alertname", ""), "hostname": alert.labels.get("hostname", "")}


def alert_document(alert: Alert, *, affects: list[str] | None = None) -> AlertDocument:
    """One alert (its rule and host, or rack, read with it; its cause too, when it has one).

    ``affects``: the hostnames of the alerts that hang under this one (``alerts_affects``).
    """
    labels = alert.labels
    return {
        "id": alert.pk,
        "rule": alert.rule.name,
        # A rack's alert (its power) names the rack and no host.
        "hostname": alert.host.hostname if alert.host_id is not None else None,
        "rack": labels.get("rack") or None,
        "state": alert.state,  # type: ignore[typeddict-item]
        "severity": labels.get("severity", alert.rule.severity),
        "activeAt": iso_utc(alert.starts_at),
        "startsAt": iso_utc(alert.fired_at or alert.starts_at),
        "endsAt": iso_utc(alert.ends_at) if alert.ends_at else None,
        "values": alert.values,
        "labels": labels,
        "annotations": annotations_render(alert.rule.annotations, labels, alert.values),
        "causedBy": alert_reference(alert.cause) if alert.cause_id is not None and alert.cause else None,
        "affects": affects or [],
    }


def alerts_affects(alert_ids: list[int]) -> dict[int, list[str]]:
    """For each of these alerts, the hostnames of the alerts it caused (hosts its failed switch cut off), sorted."""
    affects: dict[int, list[str]] = {}
    for start in range(0, len(alert_ids), 2000):
        rows = Alert.objects.filter(cause_id__in=alert_ids[start : start + 2000]).values_list("cause_id", "labels")
        for cause_id, labels in rows:
            affects.setdefault(cause_id, []).append(labels.get("hostname", ""))
    for names in affects.values():
        names.sort()
    return affects


def alerts_documents(alerts: list[Alert]) -> list[AlertDocument]:
    """These alerts' documents, each cause with the hosts it affects (one more query)."""
    affects = alerts_affects([a.pk for a in alerts])
    return [alert_document(a, affects=affects.get(a.pk)) for a in alerts]


def alerts_active_at(*, at: datetime) -> list[AlertDocument]:
    """The alerts that fired at ``at`` and had not resolved by then (from the transitions), oldest first.

    What ``GET /api/twin/state?at=`` adds as ``alerts``: each as it stood at
    ``at`` (``state`` firing, ``endsAt`` null even if it resolved later).
    """
    fired = AlertTransition.objects.filter(to_state=AlertState.FIRING, at__lte=at).values("alert_id")
    ended = AlertTransition.objects.filter(to_state=AlertState.RESOLVED, at__lte=at).values("alert_id")
    alerts = list(
        Alert.objects.filter(pk__in=fired)
        .exclude(pk__in=ended)
        .select_related("rule", "host", "rack", "cause")
        .order_by("fired_at", "id")
    )
    documents = alerts_documents(alerts)
    for document in documents:
        document["state"] = AlertState.FIRING  # type: ignore[typeddict-item]
        document["endsAt"] = None
    return documents


def alerts_firing() -> AlertList:
    """What fires now, oldest first."""
    alerts = Alert.objects.filter(state=AlertState.FIRING).select_related("rule", "host", "rack", "cause")
    return {"alerts": alerts_documents(list(alerts.order_by("fired_at", "id")))}


@dataclass(frozen=True)
class AlertFilters:
    """The history's filters: a host, a rack, a rule, and the alerts active at some time in [since, until)."""

    host: str | None = None
    # A rack's own alerts (its power) and those of the hosts in it when they opened (their ``rack`` label).
    rack: str | None = None
    rule: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def alerts_history(*, filters: AlertFilters, limit: int) -> AlertList:
    """Alerts of any state, newest first, that were active at some moment in the range."""
    alerts = Alert.objects.select_related("rule", "host", "rack", "cause").order_by("-starts_at", "-id")
    if filters.host is not None:
        alerts = alerts.filter(host__hostname=filters.host)
    if filters.rack is not None:
        alerts = alerts.filter(Q(rack__name=filters.rack) | Q(host__rack__name=filters.rack))
    if filters.rule is not None:
        alerts = alerts.filter(rule__name=filters.rule)
    if filters.until is not None:
        alerts = alerts.filter(starts_at__lt=filters.until)
    if filters.since is not None:
        alerts = alerts.exclude(ends_at__lt=filters.since)
    return {"alerts": alerts_documents(list(alerts[:limit]))}


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


def evaluation_wait(*, now: datetime, share: float) -> float:
    """Seconds before the next evaluation fits the CPU budget: the last run's cost over ``share``, less the time since.

    0 when the budget allows a run now (or no run has been recorded yet, or ``share`` is 0: no budget).
    """
    last = Evaluation.objects.filter(pk=1).values_list("evaluated_at", "cost_seconds").first()
    if last is None or share <= 0:
        return 0.0
    evaluated_at, cost = last
    return max(0.0, cost / share - (now - evaluated_at).total_seconds())
