"""HTTP read of the twin."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from twin.snapshot import snapshot_build


class TwinStateView(APIView):
    """``GET /api/twin/state``: the whole twin as one document."""

    authentication_classes: list = []
    permission_classes: list = []

    def get(self, request: Request) -> Response:
        return Response(snapshot_build())
