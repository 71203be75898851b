"""Shapes of the alerts API: requests as msgspec Structs, documents as TypedDicts, declared once.

Requests are snake_case (as the commands API's), documents camelCase with times in
ISO-8601 UTC (``common.formats.iso_utc``). The OpenAPI schema is generated from these
(``twinsite.openapi``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypedDict

import msgspec

from alerts.conditions import Kind, Operator, Scope, Severity

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=253)]
KindName = Literal["metric", "status", "absent"]
OperatorName = Literal[">", ">=", "<", "<="]
SeverityName = Literal["critical", "warning", "info"]
ScopeName = Literal["all", "racks", "hosts", "virtual"]
assert set(KindName.__args__) == {k.value for k in Kind}  # type: ignore[attr-defined]
assert set(OperatorName.__args__) == {o.value for o in Operator}  # type: ignore[attr-defined]
assert set(SeverityName.__args__) == {s.value for s in Severity}  # type: ignore[attr-defined]
assert set(ScopeName.__args__) == {s.value for s in Scope}  # type: ignore[attr-defined]
Number = float | None
Texts = dict[str, str]


class RuleInput(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/alerts/rules`` and ``PUT /api/alerts/rules/{id}``: a whole rule.

    ``kind`` metric: ``field`` (a metric of the registry, ``net_throughput_gbps``,
    ``link_utilization_percent``, or a rack's ``rack_power_percent`` or
    ``rack_ab_margin_watts``, evaluated once per rack with scope all or racks),
    ``operator``, ``threshold`` and optionally ``clear_threshold`` (hysteresis).
    ``kind`` status: ``status``. ``kind`` absent: ``threshold`` is the seconds without data.
    """

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    kind: KindName = "metric"
    field: Annotated[str, msgspec.Meta(max_length=64)] = ""
    operator: OperatorName | Literal[""] = ""
    threshold: Number = None
    clear_threshold: Number = None
    status: Annotated[str, msgspec.Meta(max_length=10)] = ""
    for_seconds: float = 0.0
    severity: SeverityName = "warning"
    labels: Texts = msgspec.field(default_factory=dict)
    annotations: Texts = msgspec.field(default_factory=dict)
    scope: ScopeName = "all"
    racks: Annotated[list[Name], msgspec.Meta(max_length=1000)] = msgspec.field(default_factory=list)
    hosts: Annotated[list[Name], msgspec.Meta(max_length=10_000)] = msgspec.field(default_factory=list)
    enabled: bool = True


class RulePatch(msgspec.Struct, forbid_unknown_fields=True):
    """``PATCH /api/alerts/rules/{id}``: the fields to change, the others kept."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | msgspec.UnsetType = msgspec.UNSET
    kind: KindName | msgspec.UnsetType = msgspec.UNSET
    field: Annotated[str, msgspec.Meta(max_length=64)] | msgspec.UnsetType = msgspec.UNSET
    operator: OperatorName | Literal[""] | msgspec.UnsetType = msgspec.UNSET
    threshold: Number | msgspec.UnsetType = msgspec.UNSET
    clear_threshold: Number | msgspec.UnsetType = msgspec.UNSET
    status: Annotated[str, msgspec.Meta(max_length=10)] | msgspec.UnsetType = msgspec.UNSET
    for_seconds: float | msgspec.UnsetType = msgspec.UNSET
    severity: SeverityName | msgspec.UnsetType = msgspec.UNSET
    labels: Texts | msgspec.UnsetType = msgspec.UNSET
    annotations: Texts | msgspec.UnsetType = msgspec.UNSET
    scope: ScopeName | msgspec.UnsetType = msgspec.UNSET
    racks: Annotated[list[Name], msgspec.Meta(max_length=1000)] | msgspec.UnsetType = msgspec.UNSET
    hosts: Annotated[list[Name], msgspec.Meta(max_length=10_000)] | msgspec.UnsetType = msgspec.UNSET
    enabled: bool | msgspec.UnsetType = msgspec.UNSET


class RuleDocument(TypedDict):
    """A rule as the API shows it (snake_case, as it is written)."""

    id: int
    name: str
    enabled: bool
    kind: KindName
    field: str
    operator: str
    threshold: float | None
    clear_threshold: float | None
    status: str
    for_seconds: float
    severity: SeverityName
    labels: dict[str, str]
    annotations: dict[str, str]
    scope: ScopeName
    racks: list[str]
    hosts: list[str]


class RuleList(TypedDict):
    """``GET /api/alerts/rules``."""

    rules: list[RuleDocument]


class AlertReference(TypedDict):
    """An alert named: its id, rule and host."""

    id: int
    rule: str
    hostname: str


class AlertDocument(TypedDict):
    """An alert: ``startsAt`` when it fired (when its condition began, while pending), ``endsAt`` once resolved."""

    id: int
    rule: str
    # Null for a rack's alert (a rule on the rack's power): ``rack`` names it.
    hostname: str | None
    rack: str | None
    state: Literal["pending", "firing", "resolved"]
    severity: str
    activeAt: str
    startsAt: str
    endsAt: str | None
    values: dict[str, Any]
    labels: dict[str, str]
    annotations: dict[str, str]
    # The failed switch's alert this one hangs under (its notices inhibited), or null.
    causedBy: AlertReference | None
    # The hosts whose alerts hang under this one (the hosts a failed switch cut off), sorted; [] for most.
    affects: list[str]


class AlertList(TypedDict):
    """``GET /api/alerts`` (what fires now) and ``GET /api/alerts/history``."""

    alerts: list[AlertDocument]
