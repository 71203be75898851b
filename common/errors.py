"""JSON errors everywhere: DRF exceptions and Django's own 400/403/404/500 pages."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, JsonResponse
from psycopg_pool import PoolTimeout
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)

# Django wraps the driver's connection errors in these; the pool's own timeout
# (every connection busy or unreachable) comes through as is.
DATABASE_DOWN = (OperationalError, InterfaceError, PoolTimeout)


def json_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, with every error body shaped ``{"error": code, "detail": text}``.

    A database that cannot be reached is the server's temporary trouble, not
    a bug: a 503 with ``Retry-After`` tells agents to keep their batch and
    come back. The transaction was not committed, so nothing is half-stored.
    """
    if isinstance(exc, DATABASE_DOWN):
        logger.warning("database unavailable: %s", exc)
        return Response(
            {"error": "database_unavailable", "detail": "The database cannot be reached; retry later."},
            status=503,
            headers={"Retry-After": str(settings.TWIN_RETRY_AFTER_SECONDS)},
        )
    response = exception_handler(exc, context)
    if response is None:
        return None
    detail = response.data.get("detail", response.data) if isinstance(response.data, dict) else response.data
    if isinstance(detail, list) and len(detail) == 1:
        detail = detail[0]
    code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
    response.data = {"error": str(code), "detail": detail, **getattr(exc, "error_fields", {})}
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
