"""HTTP read of the twin."""

from __future__ import annotations

import orjson
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from twin.snapshot import snapshot_build


class TwinStateView(APIView):
    """``GET /api/twin/state``: the whole twin as one document (readers only, see ``ReadAccess``)."""

    @extend_schema(
        operation_id="twin_state",
        responses={
            200: {"$ref": "#/components/schemas/TwinState"},
            401: {"$ref": "#/components/schemas/Error"},
            403: {"$ref": "#/components/schemas/Error"},
        },
    )
    def get(self, request: Request) -> HttpResponse:
        # Encoded here, so the document's objects (some 20 MB at 10,000 hosts)
        # are freed as soon as it is encoded rather than with the response,
        # which Django's ASGI handler leaves in a reference cycle.
        return HttpResponse(orjson.dumps(snapshot_build()), content_type="application/json")


class HealthView(APIView):
    """``GET /api/health``: the process answers (for load balancers; touches no database)."""

    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(
        operation_id="health", responses={200: {"type": "object", "properties": {"status": {"type": "string"}}}}
    )
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})
