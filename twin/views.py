"""HTTP read of the twin."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, TypedDict

import orjson
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.decorators import method_decorator
from django.views.decorators.gzip import gzip_page
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.compression import json_response
from common.formats import iso_utc
from common.params import InvalidParameter, param_datetime, param_int
from hosts.selectors import host_id_by_hostname
from twin.exposition import exposition_render
from twin.impact import impact_analyse, impact_request_decode
from twin.instruments import snapshot_observe, snapshot_sent
from twin.past import past_additions
from twin.path import path_find
from twin.selectors import host_status_events
from twin.snapshot import gc_paused, snapshot_build


class TwinStateView(APIView):
    """``GET /api/twin/state``: the whole twin as one document (readers only, see ``ReadAccess``)."""

    @extend_schema(
        operation_id="twin_state",
        parameters=[
            OpenApiParameter(
                "at",
                OpenApiTypes.DATETIME,
                description=(
                    "The twin as it was at this time (ISO-8601 with offset); generatedAt is this time. "
                    "The past document adds alerts: the alerts firing then."
                ),
            )
        ],
        responses={
            200: {"$ref": "#/components/schemas/TwinState"},
            400: {"$ref": "#/components/schemas/Error"},
            401: {"$ref": "#/components/schemas/Error"},
            403: {"$ref": "#/components/schemas/Error"},
        },
    )
    def get(self, request: Request) -> HttpResponse:
        at = None
        if "at" in request.query_params:
            now = timezone.now()
            at = param_datetime(request.query_params, "at", default=now)
            if at > now:
                raise InvalidParameter("at", "at is in the future: the twin cannot tell yet.")
        # Encoded here, so the document's objects (some 20 MB at 10,000 hosts)
        # are freed as soon as it is encoded rather than with the response,
        # which Django's ASGI handler leaves in a reference cycle.
        started = time.perf_counter()
        reader = "http" if at is None else "http_at"
        with gc_paused():
            state = snapshot_build(at=at)
        if at is not None:
            # What apps above the twin knew then (alerts: what fired), as added keys (twin.past).
            state.update(past_additions(at=at))  # type: ignore[typeddict-item]
        body = orjson.dumps(snapshot_observe(state, started=started, reader=reader))
        snapshot_sent(len(body))
        return json_response(request, body)


class ExpositionNegotiation(BaseContentNegotiation):
    """Answer whatever ``Accept`` says: the exposition reads it itself (``twin.exposition``); errors stay JSON.

    DRF's own negotiation would refuse ``Accept: application/openmetrics-text``
    with a 406 before the view runs, since no renderer of the API writes it.
    """

    def select_parser(self, request: Request, parsers: list) -> None:
        return None

    def select_renderer(self, request: Request, renderers: list, format_suffix: str | None = None) -> tuple:
        return renderers[0], renderers[0].media_type


_EXPOSITION = {"type": "string", "description": "Prometheus exposition (docs/api.md, GET /api/twin/metrics)."}


class TwinMetricsView(APIView):
    """``GET /api/twin/metrics``: every host's latest values and state as Prometheus text (readers only).

    For a Prometheus to scrape with a reader's token (``authorization: {type:
    Token, credentials: <key>}`` in its scrape config). OpenMetrics 1.0 when
    ``Accept`` asks for ``application/openmetrics-text``, else the classic
    text format 0.0.4. Gzipped when the scraper accepts it, as Prometheus
    does: at 10,000 hosts the text is some 15 MB, gzipped 0.7 MB (bench/exposition-results.md).
    """

    content_negotiation_class = ExpositionNegotiation

    @method_decorator(gzip_page)
    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return super().dispatch(request, *args, **kwargs)

    @extend_schema(
        operation_id="twin_metrics",
        responses={
            (200, "text/plain"): _EXPOSITION,
            (200, "application/openmetrics-text"): _EXPOSITION,
            401: {"$ref": "#/components/schemas/Error"},
            403: {"$ref": "#/components/schemas/Error"},
        },
    )
    def get(self, request: Request) -> HttpResponse:
        body, content_type = exposition_render(accept=request.headers.get("Accept"))
        response = HttpResponse(body, content_type=content_type)
        patch_vary_headers(response, ["Accept"])
        return response


# "from" is a Python keyword: the functional form keeps the JSON name.
HostStatusEventDoc = TypedDict("HostStatusEventDoc", {"at": str, "from": str | None, "to": str, "cause": str})


class HostEvents(TypedDict):
    """A host's status changes, oldest first."""

    hostname: str
    events: list[HostStatusEventDoc]


class HostEventsView(APIView):
    """``GET /api/hosts/{hostname}/events``: a host's status changes (readers only).

    The newest ``limit`` changes in [from, to), oldest first; each with its
    time, the status before (null for a host's first) and after, and its cause
    (``data``, ``silence`` or ``inventory``).
    """

    @extend_schema(
        operation_id="host_events",
        parameters=[
            OpenApiParameter("from", OpenApiTypes.DATETIME, description="Start, ISO-8601 with offset (default: none)."),
            OpenApiParameter("to", OpenApiTypes.DATETIME, description="End, ISO-8601 with offset (default: now)."),
            OpenApiParameter("limit", int, description="At most this many, the newest (1-1000, default 100)."),
        ],
        responses={
            200: {"$ref": "#/components/schemas/HostEvents"},
            400: {"$ref": "#/components/schemas/Error"},
            401: {"$ref": "#/components/schemas/Error"},
            403: {"$ref": "#/components/schemas/Error"},
            404: {"$ref": "#/components/schemas/Error"},
        },
    )
    def get(self, request: Request, hostname: str) -> Response:
        query = request.query_params
        end = param_datetime(query, "to", default=timezone.now())
        start = param_datetime(query, "from", default=end) if "from" in query else None
        if start is not None and start >= end:
            raise InvalidParameter("from", "from must be before to.")
        limit = param_int(query, "limit", default=100, minimum=1, maximum=1000)
        host_id = host_id_by_hostname(hostname=hostname)
        if host_id is None:
            raise NotFound(f"No host named {hostname}.")
        events = host_status_events(host_id=host_id, start=start, end=end, limit=limit or 100)
        body: HostEvents = {
            "hostname": hostname,
            "events": [
                {"at": iso_utc(e.at), "from": e.from_status or None, "to": e.to_status, "cause": e.cause}
                for e in events
            ],
        }
        return Response(body)


class HealthView(APIView):
    """``GET /api/health``: the process answers (for load balancers; touches no database)."""

    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(
        operation_id="health", responses={200: {"type": "object", "properties": {"status": {"type": "string"}}}}
    )
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


def _impact_at(request: Request) -> datetime | None:
    if "at" not in request.query_params:
        return None
    now = timezone.now()
    at = param_datetime(request.query_params, "at", default=now)
    if at > now:
        raise InvalidParameter("at", "at is in the future: the twin cannot tell yet.")
    return at


_IMPACT_RESPONSES = {
    200: {"$ref": "#/components/schemas/ImpactDoc"},
    400: {"$ref": "#/components/schemas/Error"},
    401: {"$ref": "#/components/schemas/Error"},
    403: {"$ref": "#/components/schemas/Error"},
}
_AT = OpenApiParameter("at", OpenApiTypes.DATETIME, description="The twin as it was at this time (default: now).")


class FabricImpactView(APIView):
    """``GET /api/fabric/impact?node=NAME[&node=…][&at=]``: what failing these nodes would do (readers only)."""

    @extend_schema(
        operation_id="fabric_impact",
        parameters=[
            OpenApiParameter("node", str, many=True, required=True, description="A node to fail (repeatable)."),
            _AT,
        ],
        responses=_IMPACT_RESPONSES,
    )
    def get(self, request: Request) -> Response:
        return Response(impact_analyse(fail=request.query_params.getlist("node"), at=_impact_at(request)))


class TwinImpactView(APIView):
    """``POST /api/twin/impact`` with ``{"fail": ["<node>", …]}``: the same answer as ``GET /api/fabric/impact``."""

    @extend_schema(
        operation_id="twin_impact",
        parameters=[_AT],
        request={"application/json": {"$ref": "#/components/schemas/ImpactRequest"}},
        responses=_IMPACT_RESPONSES,
    )
    def post(self, request: Request) -> Response:
        return Response(impact_analyse(fail=impact_request_decode(request.body), at=_impact_at(request)))


class TwinPathView(APIView):
    """``GET /api/twin/path?from=NODE[&to=NODE]``: the shortest paths over working switches, each hop's traffic."""

    @extend_schema(
        operation_id="twin_path",
        parameters=[
            OpenApiParameter("from", str, required=True, description="The node to start from (a host or a switch)."),
            OpenApiParameter("to", str, description="The node to reach (default: the core, TWIN_CORE_HOSTNAME)."),
        ],
        responses={
            200: {"$ref": "#/components/schemas/PathDoc"},
            400: {"$ref": "#/components/schemas/Error"},
            401: {"$ref": "#/components/schemas/Error"},
            403: {"$ref": "#/components/schemas/Error"},
        },
    )
    def get(self, request: Request) -> Response:
        return Response(path_find(source=request.query_params.get("from"), target=request.query_params.get("to")))
