"""HTTP entry points of alerts: what fires now, the history, and the rules (read by readers, written by staff)."""

from __future__ import annotations

import re
from typing import Any

import msgspec
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from alerts.rules import RuleNotFound, RuleSpec, rule_delete, rule_save, rule_spec_of
from alerts.schema import RuleInput, RulePatch
from alerts.selectors import (
    HISTORY_LIMIT_DEFAULT,
    HISTORY_LIMIT_MAX,
    AlertFilters,
    alerts_firing,
    alerts_history,
    rule_document,
    rule_get,
    rules_list,
)
from common.http import MalformedBody, json_decoded
from common.jsondecode import JsonRefused, json_decode
from common.params import InvalidParameter, param_datetime, param_int

REF = "#/components/schemas/{}"
ERROR = {"$ref": REF.format("Error")}
# A filter is a name: no control characters (PostgreSQL cannot even compare a NUL).
FILTER_RE = re.compile(r"^[^\x00-\x1f\x7f]{1,253}$")
_RULE_INPUT = msgspec.json.Decoder(RuleInput)
_RULE_PATCH = msgspec.json.Decoder(RulePatch)
ID_MAX = 2**63 - 1


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(name)}


class RuleAccess(BasePermission):
    """Model permissions, as the admin's: view (or change) to read rules, add, change or delete to write them."""

    PERMS = {"GET": "view", "HEAD": "view", "OPTIONS": "view", "POST": "add", "PUT": "change", "PATCH": "change"}
    PERMS["DELETE"] = "delete"

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        action = self.PERMS.get(request.method or "", "change")
        if action == "view":
            return user.has_perm("alerts.view_rule") or user.has_perm("alerts.change_rule")
        return user.has_perm(f"alerts.{action}_rule")


def _filter(query: Any, name: str) -> str | None:
    value = query.get(name)
    if value is not None and not FILTER_RE.match(value):
        raise InvalidParameter(name, f"{name} is a name of 1 to 253 characters without control characters.")
    return value


class AlertsView(APIView):
    """``GET /api/alerts``: the alerts firing now (readers, as the twin)."""

    @extend_schema(operation_id="alerts_firing", responses={200: _ref("AlertList"), 401: ERROR, 403: ERROR})
    def get(self, request: Request) -> Response:
        return Response(alerts_firing())


class AlertHistoryView(APIView):
    """``GET /api/alerts/history``: past and present alerts by host, rack, rule and time range, newest first."""

    @extend_schema(
        operation_id="alerts_history",
        parameters=[
            OpenApiParameter("host", str, description="Alerts of this host."),
            OpenApiParameter("rack", str, description="Alerts of this rack's power, and of the hosts in it."),
            OpenApiParameter("rule", str, description="Alerts of this rule (its name)."),
            OpenApiParameter("since", OpenApiTypes.DATETIME, description="Alerts still active at or after this time."),
            OpenApiParameter("until", OpenApiTypes.DATETIME, description="Alerts that began before this time."),
            OpenApiParameter("limit", int, description=f"At most this many, 1 to {HISTORY_LIMIT_MAX}."),
        ],
        responses={200: _ref("AlertList"), 400: ERROR, 401: ERROR, 403: ERROR},
    )
    def get(self, request: Request) -> Response:
        query = request.query_params
        now = timezone.now()
        since = param_datetime(query, "since", default=now) if "since" in query else None
        until = param_datetime(query, "until", default=now) if "until" in query else None
        if since is not None and until is not None and until < since:
            raise InvalidParameter("until", "until is before since.")
        limit = param_int(query, "limit", default=HISTORY_LIMIT_DEFAULT, minimum=1, maximum=HISTORY_LIMIT_MAX)
        filters = AlertFilters(
            host=_filter(query, "host"),
            rack=_filter(query, "rack"),
            rule=_filter(query, "rule"),
            since=since,
            until=until,
        )
        return Response(alerts_history(filters=filters, limit=limit or HISTORY_LIMIT_DEFAULT))


def _decoded(request: Request, decoder: msgspec.json.Decoder) -> Any:
    try:
        return json_decode(decoder, json_decoded(request))
    except JsonRefused as exc:
        raise MalformedBody(str(exc), code="invalid_rule") from None


def _spec(decoded: RuleInput) -> RuleSpec:
    return RuleSpec(**msgspec.structs.asdict(decoded))


class RulesView(APIView):
    """``GET /api/alerts/rules`` and ``POST /api/alerts/rules`` (staff with the model permissions)."""

    permission_classes = [RuleAccess]

    @extend_schema(operation_id="alert_rules_list", responses={200: _ref("RuleList"), 401: ERROR, 403: ERROR})
    def get(self, request: Request) -> Response:
        return Response(rules_list())

    @extend_schema(
        operation_id="alert_rules_create",
        request={"application/json": _ref("RuleInput")},
        responses={201: _ref("RuleDocument"), 400: ERROR, 401: ERROR, 403: ERROR},
    )
    def post(self, request: Request) -> Response:
        rule = rule_save(_spec(_decoded(request, _RULE_INPUT)))
        return Response(rule_document(rule_get(rule_id=rule.pk)), status=status.HTTP_201_CREATED)  # type: ignore[arg-type]


class RuleDetailView(APIView):
    """``GET``, ``PUT``, ``PATCH`` and ``DELETE /api/alerts/rules/{id}``."""

    permission_classes = [RuleAccess]

    def _rule(self, rule_id: int) -> Any:
        rule = rule_get(rule_id=rule_id) if rule_id <= ID_MAX else None
        if rule is None:
            raise RuleNotFound(rule_id)
        return rule

    @extend_schema(
        operation_id="alert_rule_read", responses={200: _ref("RuleDocument"), 401: ERROR, 403: ERROR, 404: ERROR}
    )
    def get(self, request: Request, rule_id: int) -> Response:
        return Response(rule_document(self._rule(rule_id)))

    @extend_schema(
        operation_id="alert_rule_replace",
        request={"application/json": _ref("RuleInput")},
        responses={200: _ref("RuleDocument"), 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR},
    )
    def put(self, request: Request, rule_id: int) -> Response:
        rule = self._rule(rule_id)
        rule_save(_spec(_decoded(request, _RULE_INPUT)), rule=rule)
        return Response(rule_document(self._rule(rule_id)))

    @extend_schema(
        operation_id="alert_rule_update",
        request={"application/json": _ref("RulePatch")},
        responses={200: _ref("RuleDocument"), 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR},
    )
    def patch(self, request: Request, rule_id: int) -> Response:
        rule = self._rule(rule_id)
        patch = _decoded(request, _RULE_PATCH)
        spec = rule_spec_of(rule)
        for name, value in msgspec.structs.asdict(patch).items():
            if value is not msgspec.UNSET:
                setattr(spec, name, value)
        rule_save(spec, rule=rule)
        return Response(rule_document(self._rule(rule_id)))

    @extend_schema(operation_id="alert_rule_delete", responses={204: None, 401: ERROR, 403: ERROR, 404: ERROR})
    def delete(self, request: Request, rule_id: int) -> Response:
        rule_delete(self._rule(rule_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
