"""HTTP entry point for agents' metric batches."""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from django.utils import timezone
from rest_framework import status
from rest_framework.exceptions import APIException, UnsupportedMediaType
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from metrics.schema import BatchFormatError, batch_decode
from metrics.services import IngestResult, samples_ingest
from twin.formats import iso_utc


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The body is larger than this server accepts."
    default_code = "payload_too_large"


class MalformedBatch(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "malformed_batch"


class MetricsBatchView(APIView):
    """``POST /api/metrics/batch``: store a batch of samples, report what was refused.

    The body is read as raw bytes (not through DRF's parsers) so the typed
    decoder can read it in one pass, and so a signature can cover the exact bytes.
    """

    authentication_classes: list = []
    permission_classes: list = []

    def post(self, request: Request) -> Response:
        if request.content_type.split(";")[0].strip().lower() != "application/json":
            raise UnsupportedMediaType(request.content_type or "none")
        try:
            body = request.body
        except RequestDataTooBig:
            raise PayloadTooLarge() from None
        try:
            raw_samples = batch_decode(body)
        except BatchFormatError as exc:
            raise MalformedBatch(str(exc)) from None
        result = samples_ingest(raw_samples=raw_samples, received_at=timezone.now())
        return _batch_response(result)


def _batch_response(result: IngestResult) -> Response:
    body: dict[str, object] = {"accepted": result.accepted, "receivedAt": iso_utc(result.received_at)}
    if result.duplicates:
        body["duplicates"] = result.duplicates
    if result.rejected:
        body["rejected"] = [r.as_dict() for r in result.rejected]
    if result.nothing_valid:
        body = {"error": "no_valid_samples", "detail": "No sample in the batch was valid.", **body}
        return Response(body, status=status.HTTP_400_BAD_REQUEST)
    return Response(body, status=status.HTTP_202_ACCEPTED)
