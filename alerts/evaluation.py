"""The evaluator: every rule over every host (or rack) in its scope, from the latest values and the clock.

Where the data is: ingest keeps each host's latest values (``metrics.LatestMetrics``)
and the clock alone turns a silent host stale, then offline (``twin.status``). So
the evaluator reads what the snapshot reads (``metrics.selectors.host_rows``, one
query, and the links) at a short period (the job ``alerts.evaluate``), never the
history, and derives each host's status with the snapshot's own rules. Rules on a
rack's power (``alerts.racks``) are evaluated once per rack from the facility's
reads, so an overloaded rack is one alert, not one per host in it. A lower layer
never calls it: it watches the twin from above.

Each transition is written once, across any number of server processes: the job
runs in one process at a time (``jobs``), and each run first updates the one
``Evaluation`` row inside its transaction, so a second evaluator (``run_jobs`` from
a shell, a lease that expired under a slow run) waits for the first to commit and
then reads what it wrote. The database also refuses a second open alert per rule
and host (or rack), and a second transition into the same state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction

from alerts.conditions import COMPARE, RACK_SUBJECTS, Kind, Scope
from alerts.models import (
    OPEN_STATES,
    Alert,
    AlertState,
    AlertTransition,
    Evaluation,
    Notification,
    NotificationState,
    Receiver,
    ReceiverKind,
    Rule,
)
from alerts.racks import rack_rules_evaluate
from alerts.selectors import alert_reference
from alerts.suppression import Suppressions
from common.events import Event, alert_updated, events_publish_on_commit
from common.formats import iso_utc
from fabric.reachability import causes_compute
from metrics.selectors import HOST_ROW
from twin.snapshot import snapshot_read
from twin.status import HostStatus

_ID, _HOSTNAME, _VIRTUAL = HOST_ROW.index("id"), HOST_ROW.index("hostname"), HOST_ROW.index("is_virtual")
_RACK, _SEEN = HOST_ROW.index("rack__name"), HOST_ROW.index("last_seen")
# Values read from a host that is offline (or never seen) are not current: a metric rule ignores them.
_NOT_CURRENT = (HostStatus.OFFLINE, HostStatus.UNKNOWN)


@dataclass(slots=True)
class HostView:
    """What the evaluator knows of one host now (read only; not frozen: a frozen init costs 10,000 setattrs a run)."""

    id: int
    hostname: str
    rack: str | None
    is_virtual: bool
    status: HostStatus
    last_seen: datetime | None
    row: tuple
    link_utilization_percent: float | None
    # Whether the core reaches it; if not, the failed nodes (host ids) that cut it off, nearest the core first.
    reachable: bool = True
    causes: tuple[int, ...] = ()


@dataclass(frozen=True)
class Change:
    """One transition the evaluator made."""

    rule: str
    hostname: str  # "" for a rack's alert
    from_state: str | None
    to_state: str
    at: datetime
    rack: str = ""


@dataclass(frozen=True)
class _RuleView:
    rule: Rule
    rack_names: frozenset[str]
    host_ids: frozenset[int]


def hosts_view(*, now: datetime) -> list[HostView]:
    """Every host as ``GET /api/twin/state`` shows it now: status, reachability, latest values, busiest link.

    One source of truth: the snapshot (``twin.snapshot.snapshot_read``) builds
    the document, and the evaluator reads its host documents (status,
    ``reachable``), its link rows (``utilization``, interface-based links
    included) and the rows behind them (the metric values). For each host the
    core cannot reach, ``causes`` are the failed nodes that cut it off
    (``fabric.reachability.causes_compute``), by host id.
    """
    read = snapshot_read(now=now)
    docs, rows = read.state["hosts"], read.rows
    busiest: dict[str, float] = {}
    for link in read.state["links"]:
        percent = link["utilization"] * 100.0
        for end in (link["source"], link["target"]):
            if percent > busiest.get(end, -1.0):
                busiest[end] = percent
    causes = causes_compute(read.fabric, read.reach, failed=read.failed)
    return [
        HostView(
            id=row[_ID],
            hostname=row[_HOSTNAME],
            rack=row[_RACK],
            is_virtual=bool(row[_VIRTUAL]),
            status=HostStatus(doc["status"]),
            last_seen=row[_SEEN],
            row=row,
            link_utilization_percent=busiest.get(row[_HOSTNAME]),
            reachable=doc["reachable"],
            causes=tuple(rows[c][_ID] for c in causes.get(i, ())),
        )
        for i, (row, doc) in enumerate(zip(rows, docs, strict=True))
    ]


def _scoped(view: _RuleView, *, hosts: list[HostView], real: list[HostView]) -> list[HostView]:
    """The hosts a rule watches (``real``: the non-virtual ones, shared by every rule of scope all)."""
    scope = view.rule.scope
    if scope == Scope.ALL:
        return real
    if scope == Scope.RACKS:
        return [h for h in real if h.rack in view.rack_names]
    if scope == Scope.HOSTS:
        return [h for h in hosts if h.id in view.host_ids]
    return [h for h in hosts if h.is_virtual]


@dataclass(frozen=True, slots=True)
class _Condition:
    """A rule's test of one host given whether its alert is open, and the values that say so.

    Apart, because the test runs for every host and every rule each run, and
    the values (a dict, a time as text) only for the few that open, fire or
    resolve.
    """

    holds: Callable[[HostView, bool], bool]
    values: Callable[[HostView, bool], dict[str, Any]]
    # The hosts among these for which a closed alert's test holds: one comprehension, no call per host.
    holding: Callable[[list[HostView]], list[HostView]]


def _condition(rule: Rule, *, now: datetime) -> _Condition:
    """The rule's condition (``_Condition``) as of ``now``."""
    if rule.kind == Kind.STATUS:
        wanted = rule.status

        def status_values(h: HostView, _open: bool) -> dict[str, Any]:
            return {"status": h.status.value, "lastSeen": iso_utc(h.last_seen) if h.last_seen else None}

        return _Condition(
            holds=lambda h, _open: h.status == wanted,
            values=status_values,
            holding=lambda hosts: [h for h in hosts if h.status == wanted],
        )
    if rule.kind == Kind.ABSENT:
        limit = rule.threshold or 0.0

        def absent_holds(h: HostView, _open: bool) -> bool:
            return h.last_seen is not None and (now - h.last_seen).total_seconds() > limit

        def absent_values(h: HostView, _open: bool) -> dict[str, Any]:
            if h.last_seen is None:
                return {"lastSeen": None}
            silent = (now - h.last_seen).total_seconds()
            return {"silentSeconds": round(silent, 3), "lastSeen": iso_utc(h.last_seen), "threshold": limit}

        def absent_holding(hosts: list[HostView]) -> list[HostView]:
            since = now - timedelta(seconds=limit)
            return [h for h in hosts if h.last_seen is not None and h.last_seen < since]

        return _Condition(holds=absent_holds, values=absent_values, holding=absent_holding)
    compare = COMPARE[rule.operator]
    threshold = rule.threshold if rule.threshold is not None else 0.0
    clear = rule.clear_threshold if rule.clear_threshold is not None else threshold
    if rule.field == "link_utilization_percent":

        def read(h: HostView) -> Any:
            return h.link_utilization_percent

        def metric_holding(hosts: list[HostView]) -> list[HostView]:
            return [
                h
                for h in hosts
                if (v := h.link_utilization_percent) is not None
                and h.status not in _NOT_CURRENT
                and compare(v, threshold)
            ]
    else:
        index = HOST_ROW.index(rule.field)

        def read(h: HostView) -> Any:
            return h.row[index]

        def metric_holding(hosts: list[HostView]) -> list[HostView]:
            return [
                h
                for h in hosts
                if (v := h.row[index]) is not None and h.status not in _NOT_CURRENT and compare(v, threshold)
            ]

    def metric_holds(h: HostView, open_: bool) -> bool:
        if h.status in _NOT_CURRENT:
            return False
        value = read(h)
        # Hysteresis: an open alert is held against the clear threshold, a closed one against the threshold.
        return value is not None and compare(value, clear if open_ else threshold)

    def metric_values(h: HostView, open_: bool) -> dict[str, Any]:
        value = None if h.status in _NOT_CURRENT else read(h)
        if value is None:
            return {"value": None, "status": h.status.value}
        return {"value": value, "threshold": clear if open_ else threshold}

    return _Condition(holds=metric_holds, values=metric_values, holding=metric_holding)


def alert_labels(rule: Rule, host: HostView) -> dict[str, str]:
    """An alert's labels: the twin's own (Alertmanager's ``alertname`` is the rule), then the rule's."""
    return {
        "alertname": rule.name,
        "hostname": host.hostname,
        "rack": host.rack or "",
        "severity": rule.severity,
        **rule.labels,
    }


def alerts_evaluate(*, now: datetime) -> list[Change]:
    """Evaluate every enabled rule over its hosts (a rack rule: its racks) and record what changed; return the changes.

    1. Take the evaluator's turn (update the ``Evaluation`` row first).
    2. Read the rules, the open alerts, and every host as the twin sees it now
       (the rack rules read the racks' power: ``alerts.racks``).
    3. For each rule and host in scope: a condition that starts holding opens a
       pending alert; one that has held ``for_seconds`` fires; an open alert
       whose condition no longer holds (against the clear threshold) resolves,
       as do those of rules disabled or hosts out of scope.
    4. Write the alerts and their transitions; queue a notice per receiver
       for each firing (suppressed when a silence or maintenance covers it)
       and each resolve of a notified alert; an ``alert-update`` event after commit.
    """
    with transaction.atomic():
        if not Evaluation.objects.filter(pk=1).update(evaluated_at=now):
            Evaluation.objects.bulk_create([Evaluation(pk=1, evaluated_at=now)], ignore_conflicts=True)
            Evaluation.objects.filter(pk=1).update(evaluated_at=now)
        views = [
            _RuleView(
                rule=r,
                rack_names=frozenset(x.name for x in r.racks.all()),
                host_ids=frozenset(x.pk for x in r.hosts.all()),
            )
            for r in Rule.objects.filter(enabled=True).prefetch_related("racks", "hosts")
        ]
        rack_rules = [
            (v.rule, v.rack_names) for v in views if v.rule.kind == Kind.METRIC and v.rule.field in RACK_SUBJECTS
        ]
        rules = [v for v in views if not (v.rule.kind == Kind.METRIC and v.rule.field in RACK_SUBJECTS)]
        open_alerts: dict[tuple[int, int], Alert] = {}
        open_racks: dict[tuple[int, int], Alert] = {}
        for a in Alert.objects.filter(state__in=OPEN_STATES).select_related("cause"):
            if a.host_id is not None:
                open_alerts[(a.rule_id, a.host_id)] = a
            else:
                open_racks[(a.rule_id, a.rack_id)] = a
        if not views and not open_alerts and not open_racks:
            return []  # nothing to evaluate and nothing to resolve: neither the twin nor the racks are read
        racks = rack_rules_evaluate(rack_rules, open_racks, now=now)
        # Nothing to evaluate and nothing to resolve over hosts: the twin is not read at all.
        hosts = hosts_view(now=now) if rules or open_alerts else []
        host_by_id = {h.id: h for h in hosts}

        opened: list[tuple[Alert, dict[str, Any]]] = racks.opened
        fired: list[tuple[Alert, dict[str, Any]]] = racks.fired
        resolved: list[tuple[Alert, dict[str, Any]]] = racks.resolved
        seen: set[tuple[int, int]] = set()
        real = [h for h in hosts if not h.is_virtual]
        real_ids = {h.id for h in real}
        open_by_rule: dict[int, dict[int, Alert]] = {}
        for (rule_id, host_id), alert in open_alerts.items():
            open_by_rule.setdefault(rule_id, {})[host_id] = alert
        # 20 rules over 10,000 hosts are 200,000 tests a run: the hosts a closed alert's test holds for come
        # from one comprehension per rule; only the few open alerts are looked at one by one.
        for view in rules:
            rule = view.rule
            rule_id = rule.pk
            condition = _condition(rule, now=now)
            scoped = _scoped(view, hosts=hosts, real=real)
            rule_open = open_by_rule.get(rule_id, {})
            for host in condition.holding(scoped):
                if host.id in rule_open:
                    continue
                values = condition.values(host, False)
                alert = Alert(
                    rule=rule,
                    host_id=host.id,
                    state=AlertState.PENDING,
                    starts_at=now,
                    values=values,
                    labels=alert_labels(rule, host),
                )
                opened.append((alert, values))
                if rule.for_seconds <= 0:
                    fired.append((alert, values))
            if not rule_open:
                continue
            scoped_ids = real_ids if scoped is real else {h.id for h in scoped}
            for host_id, alert in rule_open.items():
                if host_id not in scoped_ids:
                    continue  # resolved below: out of scope
                host = host_by_id[host_id]
                seen.add((rule_id, host_id))
                if not condition.holds(host, True):
                    resolved.append((alert, condition.values(host, True)))
                elif alert.state == AlertState.PENDING and (now - alert.starts_at).total_seconds() >= rule.for_seconds:
                    fired.append((alert, condition.values(host, True)))
        for key, alert in open_alerts.items():
            if key not in seen:
                resolved.append((alert, {"reason": "the rule is disabled or no longer covers this host"}))
        changes = _changes_write(opened, fired, resolved, hosts=host_by_id, open_alerts=open_alerts, now=now)
        _inhibited_release(now=now)
        return changes


def _changes_write(
    opened: list[tuple[Alert, dict[str, Any]]],
    fired: list[tuple[Alert, dict[str, Any]]],
    resolved: list[tuple[Alert, dict[str, Any]]],
    *,
    hosts: dict[int, HostView],
    open_alerts: dict[tuple[int, int], Alert],
    now: datetime,
) -> list[Change]:
    """Store the alerts' changes, their transitions and their notices (inside the evaluator's transaction)."""
    if not (opened or fired or resolved):
        return []
    Alert.objects.bulk_create([a for a, _ in opened], batch_size=2000)
    _causes_assign(opened, fired, resolved, hosts=hosts, open_alerts=open_alerts)
    transitions: list[AlertTransition] = [
        AlertTransition(alert=a, from_state="", to_state=AlertState.PENDING, at=now, values=v) for a, v in opened
    ]
    fired_ids = [a.pk for a, _ in fired]
    for start in range(0, len(fired_ids), 2000):
        Alert.objects.filter(pk__in=fired_ids[start : start + 2000], state=AlertState.PENDING).update(
            state=AlertState.FIRING, fired_at=now
        )
    for alert, values in fired:
        transitions.append(
            AlertTransition(
                alert=alert, from_state=AlertState.PENDING, to_state=AlertState.FIRING, at=now, values=values
            )
        )
        alert.state, alert.fired_at = AlertState.FIRING, now
    resolved_ids = [a.pk for a, _ in resolved]
    for start in range(0, len(resolved_ids), 2000):
        Alert.objects.filter(pk__in=resolved_ids[start : start + 2000], state__in=OPEN_STATES).update(
            state=AlertState.RESOLVED, ends_at=now
        )
    was_firing = {a.pk for a, _ in resolved if a.state == AlertState.FIRING}
    for alert, values in resolved:
        transitions.append(
            AlertTransition(alert=alert, from_state=alert.state, to_state=AlertState.RESOLVED, at=now, values=values)
        )
        alert.state, alert.ends_at = AlertState.RESOLVED, now
    AlertTransition.objects.bulk_create(transitions, batch_size=2000)
    _notices_queue(transitions, was_firing=was_firing, now=now)

    rules = {a.rule_id: a.rule.name for a, _ in (*opened, *fired, *resolved)}
    changes = [
        Change(
            rule=rules[t.alert.rule_id],
            hostname=hosts[t.alert.host_id].hostname if t.alert.host_id in hosts else "",
            from_state=t.from_state or None,
            to_state=t.to_state,
            at=now,
            rack=t.alert.labels.get("rack", ""),
        )
        for t in transitions
    ]
    events_publish_on_commit([_event_of(t) for t in transitions])
    return changes


def _causes_assign(
    opened: list[tuple[Alert, dict[str, Any]]],
    fired: list[tuple[Alert, dict[str, Any]]],
    resolved: list[tuple[Alert, dict[str, Any]]],
    *,
    hosts: dict[int, HostView],
    open_alerts: dict[tuple[int, int], Alert],
) -> None:
    """Hang each alert opening or firing on a host the core cannot reach under the alert of what cut it off.

    One incident per failed switch: the cause is an alert still open on the
    first of the host's causes (``HostView.causes``, nearest the core first)
    that has one, a firing one before a pending one. Such an alert's notices are
    inhibited (``_notices_queue``); the cause's notice names the hosts it affects.
    """
    # A rack's alert has no host, and no switch cuts a rack's power off.
    unreached = [
        a for a, _ in (*opened, *fired) if a.cause_id is None and a.host_id is not None and hosts[a.host_id].causes
    ]
    if not unreached:
        return
    closing = {id(a) for a, _ in resolved}
    on_node: dict[int, Alert] = {}
    for alert in (*open_alerts.values(), *(a for a, _ in opened)):
        if id(alert) in closing or alert.host_id is None:
            continue
        best = on_node.get(alert.host_id)
        if best is None or (best.state != AlertState.FIRING and alert.state == AlertState.FIRING):
            on_node[alert.host_id] = alert
    caused: dict[int, Alert] = {}
    for alert in unreached:
        cause = next((on_node[n] for n in hosts[alert.host_id].causes if n in on_node), None)
        if cause is not None and cause.pk != alert.pk:
            alert.cause = cause
            caused[alert.pk] = alert
    if caused:
        Alert.objects.bulk_update(list(caused.values()), ["cause"], batch_size=2000)


def _inhibited_release(*, now: datetime) -> None:
    """Send the held notices of alerts that still fire well after their cause resolved: their own incident now.

    When a switch comes back, its hosts report again within a report
    interval and resolve; one still offline ``TWIN_OFFLINE_AFTER_SECONDS``
    after its cause ended is offline for its own reasons, and is notified.
    """
    cutoff = now - timedelta(seconds=settings.TWIN_OFFLINE_AFTER_SECONDS)
    Notification.objects.filter(
        state=NotificationState.INHIBITED,
        transition__to_state=AlertState.FIRING,
        transition__alert__state=AlertState.FIRING,
        transition__alert__cause__state=AlertState.RESOLVED,
        transition__alert__cause__ends_at__lte=cutoff,
    ).update(state=NotificationState.PENDING, next_attempt_at=now)


ALERTMANAGER_FROM_SETTING = "TWIN_ALERTMANAGER_URL"


def receivers_enabled() -> list[int]:
    """The receivers notices go to: the enabled ones, with ``TWIN_ALERTMANAGER_URL``'s kept as one of them."""
    url = settings.TWIN_ALERTMANAGER_URL
    if url:
        receiver, _ = Receiver.objects.get_or_create(
            name=ALERTMANAGER_FROM_SETTING, defaults={"kind": ReceiverKind.ALERTMANAGER, "url": url}
        )
        if (receiver.url, receiver.kind) != (url, ReceiverKind.ALERTMANAGER):
            Receiver.objects.filter(pk=receiver.pk).update(url=url, kind=ReceiverKind.ALERTMANAGER)
    return list(Receiver.objects.filter(enabled=True).values_list("pk", flat=True))


def _notices_queue(transitions: list[AlertTransition], *, was_firing: set[int], now: datetime) -> None:
    """One notice per receiver for each firing, and for each resolve of an alert whose firing was notified.

    A firing inside a silence or a maintenance window is recorded as a
    suppressed notice (the delivery log shows it) and is never sent; one with a
    cause (a failed switch's alert) is recorded as inhibited, and the cause's
    notice names it. Their resolves then are not sent either, while anything
    that was notified gets its resolve.
    """
    receivers = receivers_enabled()
    if not receivers:
        return
    firing = [t for t in transitions if t.to_state == AlertState.FIRING]
    resolving = [t for t in transitions if t.to_state == AlertState.RESOLVED and t.alert_id in was_firing]
    notices: list[Notification] = []
    if firing:
        suppressions = Suppressions.active(now=now)
        for t in firing:
            if suppressions.covers(t.alert):
                state = NotificationState.SUPPRESSED
            elif t.alert.cause_id is not None:
                state = NotificationState.INHIBITED
            else:
                state = NotificationState.PENDING
            notices += [
                Notification(transition=t, receiver_id=r, state=state, next_attempt_at=now, created_at=now)
                for r in receivers
            ]
    if resolving:
        notified = set(
            Notification.objects.filter(
                transition__alert_id__in=[t.alert_id for t in resolving], transition__to_state=AlertState.FIRING
            )
            .exclude(state__in=(NotificationState.SUPPRESSED, NotificationState.INHIBITED))
            .values_list("transition__alert_id", "receiver_id")
        )
        notices += [
            Notification(transition=t, receiver_id=r, next_attempt_at=now, created_at=now)
            for t in resolving
            for r in receivers
            if (t.alert_id, r) in notified
        ]
    Notification.objects.bulk_create(notices, batch_size=2000)


def _event_of(transition: AlertTransition) -> Event:
    """The ``alert.updated`` event of one transition."""
    alert = transition.alert
    cause = alert.cause if alert.cause_id is not None else None
    return alert_updated(
        alert_id=alert.pk,
        rule=alert.labels.get("alertname", ""),
        hostname=alert.labels.get("hostname") if alert.host_id is not None else None,
        rack=alert.labels.get("rack") or None,
        severity=alert.labels.get("severity", ""),
        caused_by=None if cause is None else alert_reference(cause),
        from_state=transition.from_state or None,
        to_state=transition.to_state,
        at=iso_utc(transition.at),
        values=transition.values,
    )


def evaluation_cost_record(*, cost_seconds: float) -> None:
    """Record what the last run cost in CPU seconds, for the job's budget (``alerts.selectors.evaluation_wait``)."""
    Evaluation.objects.filter(pk=1).update(cost_seconds=cost_seconds)
