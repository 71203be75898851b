"""``POST /api/v1/write``: Prometheus remote-write 1.0 into the twin."""

from __future__ import annotations

from typing import NotRequired, TypedDict

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import UnsupportedMediaType
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from collectors.authentication import CollectorTokenAuthentication, CollectorWriteAccess
from collectors.remote_write import write_request_decode
from collectors.selectors import CollectorIdentity
from collectors.services import remote_write_receive
from common.http import raw_body

CONTENT_TYPE = "application/x-protobuf"


class RemoteWriteRefusal(TypedDict):
    hostname: str
    reason: str


class RemoteWriteAccepted(TypedDict):
    """What became of a write: samples stored (one per host and scrape), and what was not kept."""

    accepted: int
    duplicates: int
    hosts: int
    ignoredSeries: int
    rejected: NotRequired[list[RemoteWriteRefusal]]


class RemoteWriteView(APIView):
    """Prometheus remote-write 1.0: snappy-compressed protobuf, a collector token as bearer.

    node_exporter's series become the seed's samples of the host each names
    (``hostname`` label, else ``instance`` without its port). A 4xx tells
    Prometheus not to retry (the request can never succeed); a 503 makes it
    retry, which stores nothing twice.
    """

    authentication_classes = [CollectorTokenAuthentication]
    permission_classes = [CollectorWriteAccess]

    @extend_schema(
        operation_id="prometheus_remote_write",
        request={CONTENT_TYPE: {"type": "string", "format": "binary"}},
        parameters=[
            OpenApiParameter("Content-Encoding", str, OpenApiParameter.HEADER, required=True, enum=["snappy"]),
            OpenApiParameter("X-Prometheus-Remote-Write-Version", str, OpenApiParameter.HEADER),
        ],
        responses={
            200: {
                "type": "object",
                "required": ["accepted", "duplicates", "hosts", "ignoredSeries"],
                "properties": {
                    "accepted": {"type": "integer", "description": "Samples stored (one per host and scrape)."},
                    "duplicates": {"type": "integer", "description": "Samples stored by an earlier try."},
                    "hosts": {"type": "integer", "description": "Hosts the kept series named."},
                    "ignoredSeries": {"type": "integer", "description": "Series not kept (not the seed's fields)."},
                    "rejected": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["hostname", "reason"],
                            "properties": {"hostname": {"type": "string"}, "reason": {"type": "string"}},
                        },
                    },
                },
            },
            400: {"$ref": "#/components/schemas/Error"},
            401: {"$ref": "#/components/schemas/Error"},
            403: {"$ref": "#/components/schemas/Error"},
            413: {"$ref": "#/components/schemas/Error"},
            415: {"$ref": "#/components/schemas/Error"},
            503: {"$ref": "#/components/schemas/Error"},
        },
    )
    def post(self, request: Request) -> Response:
        body = raw_body(request, content_type=CONTENT_TYPE)
        if request.headers.get("Content-Encoding", "").strip().lower() != "snappy":
            raise UnsupportedMediaType(
                request.headers.get("Content-Encoding", "none"),
                detail="Remote-write bodies are snappy-compressed: send Content-Encoding: snappy.",
            )
        write = write_request_decode(body, limit=settings.TWIN_MAX_BODY_BYTES)
        assert isinstance(request.auth, CollectorIdentity)
        result = remote_write_receive(request=write, collector=request.auth, now=timezone.now())
        answer: RemoteWriteAccepted = {
            "accepted": result.accepted,
            "duplicates": result.duplicates,
            "hosts": result.hosts,
            "ignoredSeries": result.ignored_series,
        }
        if result.rejected:
            answer["rejected"] = result.rejected  # type: ignore[typeddict-item]
        return Response(answer)
