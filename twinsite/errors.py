"""JSON errors everywhere: DRF exceptions and Django's own 400/403/404/500 pages."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from rest_framework.response import Response
from rest_framework.views import exception_handler


def json_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, with every error body shaped ``{"error": code, "detail": text}``."""
    response = exception_handler(exc, context)
    if response is None:
        return None
    detail = response.data.get("detail", response.data) if isinstance(response.data, dict) else response.data
    if isinstance(detail, list) and len(detail) == 1:
        detail = detail[0]
    code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
    response.data = {"error": str(code), "detail": detail}
    return response


def _json_error(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"error": code, "detail": detail}, status=status)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return _json_error(400, "bad_request", "The request could not be understood.")


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return _json_error(403, "permission_denied", "You do not have permission to do this.")


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return _json_error(404, "not_found", f"Nothing at {request.path}.")


def server_error(request: HttpRequest) -> JsonResponse:
    return _json_error(500, "server_error", "The server failed; the error is logged.")
