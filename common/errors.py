"""JSON errors everywhere: DRF exceptions, Django's own 400/403/404/500 pages, CSRF failures, login lockouts.

Error responses that do not pass through these (a Django view's 405) are turned
into JSON by ``common.middleware.JsonErrorsMiddleware``.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from psycopg_pool import PoolTimeout
from rest_framework.response import Response
from rest_framework.views import exception_handler

from common.renderers import ORJSONRenderer

logger = logging.getLogger(__name__)

# Django wraps the driver's connection errors in these; the pool's own timeout
# (every connection busy or unreachable) comes through as is.
DATABASE_DOWN = (OperationalError, InterfaceError, PoolTimeout)

# SQLSTATEs of a statement that lost a race, not of a broken database:
# deadlock_detected, serialization_failure, lock_not_available.
_CONFLICT_STATES = frozenset({"40P01", "40001", "55P03"})


def database_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` is a database conflict that the same work retried later would not meet.

    A deadlock with a concurrent DDL (dropping a day's partition, a migration,
    a test's TRUNCATE), a serialization failure or a lock timeout on
    PostgreSQL; "database is locked" on SQLite.
    """
    if not isinstance(exc, OperationalError):
        return False
    cause = exc.__cause__
    if getattr(cause, "sqlstate", None) in _CONFLICT_STATES:
        return True
    return "database is locked" in str(exc)


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached now: down, restarting, recovering from a crash.

    PostgreSQL ending every session for a restart ("terminating connection due
    to administrator command"), refusing new ones while it shuts down or
    recovers, a broken socket, the pool's timeout: an outage, not a bug.
    """
    return isinstance(exc, DATABASE_DOWN) and not database_conflict(exc)


def database_trouble(exc: BaseException) -> bool:
    """Whether ``exc`` is the database's passing trouble (an outage or a lost race) that a later retry clears.

    Loops that retry (the job runner, the twin's feed, the live readers'
    recheck) log it on one line: a traceback per tick of an outage would
    drown the log and tell nothing the message does not.
    """
    return database_unavailable(exc) or database_conflict(exc)


class Refused(Exception):
    """A request a service refuses, with why: the one refusal every app raises.

    ``code`` is the machine-readable error, ``detail`` the sentence, ``status``
    the HTTP status, ``fields`` extra keys of the error body (a command's state
    on a refused transition, say) and ``headers`` extra response headers.
    ``json_exception_handler`` turns it into the JSON error shape, so views
    never catch it; the admin shows ``detail`` as a message.
    """

    status: int = 400

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        status: int | None = None,
        fields: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail
        if status is not None:
            self.status = status
        self.fields = fields or {}
        self.headers = headers or {}


def json_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, with every error body shaped ``{"error": code, "detail": text}``.

    A database that cannot be reached is the server's temporary trouble, not
    a bug: a 503 with ``Retry-After`` tells agents to keep their batch and
    come back. The transaction was not committed, so nothing is half-stored.
    """
    request = context.get("request")
    if request is not None:
        # Errors are JSON whatever the view renders otherwise (the schema view
        # renders YAML, the docs view HTML), and whatever the client accepts.
        request.accepted_renderer = ORJSONRenderer()
        request.accepted_media_type = ORJSONRenderer.media_type
    if isinstance(exc, DATABASE_DOWN):
        logger.warning("database unavailable: %s", exc)
        return Response(
            {"error": "database_unavailable", "detail": "The database cannot be reached; retry later."},
            status=503,
            headers={"Retry-After": str(settings.TWIN_RETRY_AFTER_SECONDS)},
        )
    if isinstance(exc, Refused):
        return Response({"error": exc.code, "detail": exc.detail, **exc.fields}, status=exc.status, headers=exc.headers)
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


def csrf_failure(request: HttpRequest, reason: str = "") -> JsonResponse:
    """``CSRF_FAILURE_VIEW``: a form posted without its CSRF token (or from another site)."""
    return _json_error(403, "csrf_failed", f"The CSRF check failed: {reason or 'no valid token'}. Reload the form.")


def login_locked_out(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """django-axes' answer to a login from a username and address pair that failed too often.

    A 429 with ``Retry-After``: the pair may try again once the cool-off has
    passed (a successful login then resets the count). django-axes calls this
    with the original response and credentials, in an order that differs between
    its sync and async paths, so neither is used.
    """
    cooloff = settings.AXES_COOLOFF_TIME
    minutes = max(1, round(cooloff.total_seconds() / 60))
    response = _json_error(
        429,
        "login_locked",
        f"Too many failed logins for this username from this address; try again in {minutes} minute(s).",
    )
    response["Retry-After"] = str(int(cooloff.total_seconds()))
    return response
