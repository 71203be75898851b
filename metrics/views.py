"""HTTP entry point for agents' metric batches."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import NotRequired, TypedDict

import orjson
from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotAuthenticated, NotFound
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from commands.schema import AgentInvocation
from common.compression import json_response
from common.formats import iso_utc
from common.http import MalformedBody, PayloadTooLarge, json_decoded
from common.params import InvalidParameter, param_choices, param_datetime, param_int
from common.throttling import SharedRateThrottle
from hosts.authentication import AgentSignatureAuthentication
from hosts.credentials import HEADER_KEY_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP
from hosts.models import Host
from hosts.selectors import AgentIdentity
from metrics.fields import METRIC_FIELDS
from metrics.history import MAX_POINTS, labelled_series_read, series_read
from metrics.models import Series as LabelledSeries
from metrics.schema import BatchFormatError, batch_decode
from metrics.selectors import host_series_list
from metrics.services import IngestResult, batch_receive


class RejectedSample(TypedDict):
    index: int
    reason: str
    hostname: NotRequired[str]


class RefusedMetrics(TypedDict):
    """Labelled metrics (positions in the sample's ``metrics``) of the stored sample ``index`` that were not stored."""

    index: int
    hostname: str
    metrics: list[int]
    reason: str


class BatchAccepted(TypedDict):
    """The answer to a batch: how many samples were stored, and which were refused."""

    accepted: int
    receivedAt: str
    duplicates: NotRequired[int]
    duplicate: NotRequired[bool]
    rejected: NotRequired[list[RejectedSample]]
    # Labelled metrics of stored samples that were not stored, grouped by sample and reason.
    metricsRefused: NotRequired[list[RefusedMetrics]]
    # The agent's pending command invocations (docs/api.md, "Command lifecycle"); absent when none.
    invocations: NotRequired[list[AgentInvocation]]


class AgentWriteAccess(BasePermission):
    """A signed batch always; an unsigned one only with ``TWIN_AGENT_AUTH=open``."""

    message = (
        f"Sign the batch ({HEADER_KEY_ID}, {HEADER_TIMESTAMP}, {HEADER_SIGNATURE}); "
        "unsigned batches are only accepted with TWIN_AGENT_AUTH=open."
    )

    def has_permission(self, request: Request, view: APIView) -> bool:
        return isinstance(request.auth, AgentIdentity) or settings.TWIN_AGENT_AUTH == "open"


SIGNATURE_HEADERS = [
    OpenApiParameter(HEADER_KEY_ID, str, OpenApiParameter.HEADER, description="The host credential's key id."),
    OpenApiParameter(HEADER_TIMESTAMP, str, OpenApiParameter.HEADER, description="Unix time in seconds."),
    OpenApiParameter(
        HEADER_SIGNATURE,
        str,
        OpenApiParameter.HEADER,
        description="sha256=<hex HMAC-SHA256 of '<timestamp>.' + body under the signing secret>.",
    ),
]


class BatchTooLarge(PayloadTooLarge):
    default_code = "batch_too_large"


class IngestRateThrottle(SharedRateThrottle):
    """``TWIN_INGEST_RATE_PER_MINUTE`` batches per host (per address for unsigned batches).

    Counted in the shared cache; per process while it cannot be reached
    (``common.throttling``): ingest never waits on Redis.
    """

    scope = "ingest"

    def get_rate(self) -> str:
        return f"{settings.TWIN_INGEST_RATE_PER_MINUTE}/min"

    def get_cache_key(self, request: Request, view: APIView) -> str:
        who = request.auth.hostname if isinstance(request.auth, AgentIdentity) else self.get_ident(request)
        return f"throttle:ingest:{who}"


class MetricsBatchView(APIView):
    """``POST /api/metrics/batch``: store a batch of samples, report what was refused.

    The body is read as raw bytes (not through DRF's parsers) so the typed
    decoder reads it in one pass and the signature covers the exact bytes.
    """

    authentication_classes = [AgentSignatureAuthentication]
    permission_classes = [AgentWriteAccess]
    throttle_classes = [IngestRateThrottle]

    def permission_denied(self, request: Request, message: str | None = None, code: str | None = None) -> None:
        # DRF drops the permission's message for an unauthenticated caller; the
        # agent needs to know it must sign.
        raise NotAuthenticated(message or AgentWriteAccess.message)

    @extend_schema(
        operation_id="metrics_batch",
        request={"application/json": {"$ref": "#/components/schemas/MetricsBatch"}},
        parameters=SIGNATURE_HEADERS,
        responses={
            202: {"$ref": "#/components/schemas/BatchAccepted"},
            400: {"$ref": "#/components/schemas/Error"},
            401: {"$ref": "#/components/schemas/Error"},
            403: {"$ref": "#/components/schemas/Error"},
            413: {"$ref": "#/components/schemas/Error"},
            415: {"$ref": "#/components/schemas/Error"},
            429: {"$ref": "#/components/schemas/Error"},
            503: {"$ref": "#/components/schemas/Error"},
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        try:
            batch = batch_decode(json_decoded(request))
        except BatchFormatError as exc:
            raise MalformedBody(str(exc), code="malformed_batch") from None
        if len(batch.samples) > settings.TWIN_MAX_BATCH_SAMPLES:
            raise BatchTooLarge(
                f"{len(batch.samples)} samples; a batch carries at most {settings.TWIN_MAX_BATCH_SAMPLES} "
                "(TWIN_MAX_BATCH_SAMPLES). Split it."
            )
        identity = request.auth if isinstance(request.auth, AgentIdentity) else None
        received = batch_receive(batch=batch, identity=identity)
        return _batch_response(received.result, received.invocations)


def _batch_response(result: IngestResult, invocations: list[AgentInvocation]) -> Response:
    body: BatchAccepted = {"accepted": result.accepted, "receivedAt": iso_utc(result.received_at)}
    if result.duplicate_batch:
        body["duplicate"] = True
    if result.duplicates:
        body["duplicates"] = result.duplicates
    if result.rejected:
        body["rejected"] = [r.as_dict() for r in result.rejected]  # type: ignore[misc]
    if result.metrics_refused:
        body["metricsRefused"] = [r.as_dict() for r in result.metrics_refused]  # type: ignore[misc]
    if invocations:
        body["invocations"] = invocations
    if result.nothing_valid:
        error = {"error": "no_valid_samples", "detail": "No sample in the batch was valid.", **body}
        return Response(error, status=status.HTTP_400_BAD_REQUEST)
    return Response(body, status=status.HTTP_202_ACCEPTED)


# --------------------------------------------------------------------------- history


class SeriesStats(TypedDict):
    avg: list[float | None]
    min: list[float | None]
    max: list[float | None]


# "from" is a Python keyword: the functional form keeps the JSON names.
HostSeries = TypedDict(
    "HostSeries",
    {
        "hostname": str,
        "from": str,
        "to": str,
        "stepSeconds": int,
        "resolution": str,
        "times": list[str],
        "series": dict[str, SeriesStats],
    },
)
# A series spans at most this many days of buckets (step included).
MAX_STEP_SECONDS = 3650 * 86400
SERIES_KEYS = tuple(f.key for f in METRIC_FIELDS)

SERIES_PARAMETERS = [
    OpenApiParameter("from", OpenApiTypes.DATETIME, description="Start, ISO-8601 with offset (default: `to` - 1 h)."),
    OpenApiParameter("to", OpenApiTypes.DATETIME, description="End, ISO-8601 with offset (default: now)."),
    OpenApiParameter(
        "step",
        int,
        description="Seconds per point (default: about 1,000 points). Rounded up to whole rollup buckets when "
        "served from rollups; the answer's stepSeconds says which.",
    ),
    OpenApiParameter(
        "fields", str, description=f"Comma-separated metric keys (default: all): {','.join(SERIES_KEYS)}."
    ),
]


class HostSeriesView(APIView):
    """``GET /api/hosts/{hostname}/metrics``: one host's metrics over time (readers only).

    Averages, least and greatest values per bucket, aggregated in the database
    from the coarsest history level that fills the step (``metrics.history``);
    counters come back as reset-safe rates in bytes per second.
    """

    @extend_schema(
        operation_id="host_metrics",
        parameters=SERIES_PARAMETERS,
        responses={
            200: {"$ref": "#/components/schemas/HostSeries"},
            400: {"$ref": "#/components/schemas/Error"},
            401: {"$ref": "#/components/schemas/Error"},
            403: {"$ref": "#/components/schemas/Error"},
            404: {"$ref": "#/components/schemas/Error"},
        },
    )
    def get(self, request: Request, hostname: str) -> HttpResponse:
        query = request.query_params
        now = timezone.now()
        start, end, step = _range_params(query, now=now)
        keys = param_choices(query, "fields", allowed=SERIES_KEYS) or SERIES_KEYS
        host_id = Host.objects.filter(hostname=hostname).values_list("pk", flat=True).first()
        if host_id is None:
            raise NotFound(f"No host named {hostname}.")
        series = series_read(host_id=host_id, start=start, end=end, step=step, keys=keys, now=now)
        body: HostSeries = {
            "hostname": hostname,
            "from": iso_utc(series.start),
            "to": iso_utc(series.end),
            "stepSeconds": series.step,
            "resolution": series.resolution,
            "times": [iso_utc(t) for t in series.times],
            "series": series.values,  # type: ignore[typeddict-item]
        }
        return json_response(request, orjson.dumps(body))


def _range_params(query: Mapping[str, str], *, now: datetime) -> tuple[datetime, datetime, int | None]:
    """``from``, ``to`` and ``step`` of a series request, checked (``InvalidParameter`` otherwise)."""
    end = param_datetime(query, "to", default=now)
    start = param_datetime(query, "from", default=end - timedelta(hours=1))
    if start >= end:
        raise InvalidParameter("from", "from must be before to.")
    step = param_int(query, "step", default=None, minimum=1, maximum=MAX_STEP_SECONDS)
    if step is not None and (end - start).total_seconds() / step > MAX_POINTS:
        raise InvalidParameter(
            "step", f"step={step} gives more than {MAX_POINTS} points over this range; use a larger step."
        )
    return start, end, step


def _host_id(hostname: str) -> int:
    host_id = Host.objects.filter(hostname=hostname).values_list("pk", flat=True).first()
    if host_id is None:
        raise NotFound(f"No host named {hostname}.")
    return host_id


class LabelledSeriesInfo(TypedDict):
    """A host's labelled series: its id (for its values' URL), name, labels, and its first report's type and unit."""

    id: int
    name: str
    labels: dict[str, str]
    type: str
    unit: str
    createdAt: str


class LabelledSeriesList(TypedDict):
    hostname: str
    series: list[LabelledSeriesInfo]


LabelledSeriesValues = TypedDict(
    "LabelledSeriesValues",
    {
        "hostname": str,
        "id": int,
        "name": str,
        "labels": dict[str, str],
        "type": str,
        "unit": str,
        "from": str,
        "to": str,
        "stepSeconds": int,
        "resolution": str,
        "times": list[str],
        "values": SeriesStats,
    },
)

_READ_ERRORS = {
    400: {"$ref": "#/components/schemas/Error"},
    401: {"$ref": "#/components/schemas/Error"},
    403: {"$ref": "#/components/schemas/Error"},
    404: {"$ref": "#/components/schemas/Error"},
}


class HostLabelledSeriesView(APIView):
    """``GET /api/hosts/{hostname}/series``: a host's labelled series (readers only); ``?name=`` filters."""

    @extend_schema(
        operation_id="host_series_list",
        parameters=[OpenApiParameter("name", str, description="Only the series of this metric name.")],
        responses={200: {"$ref": "#/components/schemas/LabelledSeriesList"}, **_READ_ERRORS},
    )
    def get(self, request: Request, hostname: str) -> HttpResponse:
        host_id = _host_id(hostname)
        body: LabelledSeriesList = {
            "hostname": hostname,
            "series": host_series_list(host_id=host_id, name=request.query_params.get("name")),  # type: ignore[typeddict-item]
        }
        return json_response(request, orjson.dumps(body))


class HostLabelledSeriesValuesView(APIView):
    """``GET /api/hosts/{hostname}/series/{id}``: one labelled series over time, as the host's fields are.

    Read by the same path as ``/metrics`` (``metrics.history``): raw values,
    5-minute or hourly rollups by the step; a counter comes back as reset-safe
    rates per second, a gauge as its average, least and greatest per bucket.
    """

    @extend_schema(
        operation_id="host_series_values",
        parameters=SERIES_PARAMETERS[:3],
        responses={200: {"$ref": "#/components/schemas/LabelledSeriesValues"}, **_READ_ERRORS},
    )
    def get(self, request: Request, hostname: str, series_id: int) -> HttpResponse:
        now = timezone.now()
        start, end, step = _range_params(request.query_params, now=now)
        host_id = _host_id(hostname)
        series = LabelledSeries.objects.filter(host_id=host_id, pk=series_id).first()
        if series is None:
            raise NotFound(f"{hostname} has no labelled series {series_id}.")
        read = labelled_series_read(series_id=series.pk, kind=series.kind, start=start, end=end, step=step, now=now)
        body: LabelledSeriesValues = {
            "hostname": hostname,
            "id": series.pk,
            "name": series.name,
            "labels": series.labels,
            "type": series.kind,
            "unit": series.unit,
            "from": iso_utc(read.start),
            "to": iso_utc(read.end),
            "stepSeconds": read.step,
            "resolution": read.resolution,
            "times": [iso_utc(t) for t in read.times],
            "values": read.values["value"],  # type: ignore[typeddict-item]
        }
        return json_response(request, orjson.dumps(body))
