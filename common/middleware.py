"""Middleware every request passes: JSON errors whatever answered, and no 5xx for what a client sent.

Each runs on the event loop and in a thread alike (``sync_capable`` and
``async_capable``), so none adds a hop between them (tests/test_middleware.py).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.db import DataError
from django.http import HttpRequest, HttpResponseBase, JsonResponse

from common.http import inflation_budget

logger = logging.getLogger(__name__)

GetResponse = Callable[[HttpRequest], Any]

# What a client can cause in a library below our own checks: a structure nested
# deeper than the interpreter's recursion limit, bytes that are not UTF-8, a
# value the database refuses (too long, NUL in text: psycopg refuses NUL with a
# plain ValueError).
CLIENT_FAULTS = (RecursionError, UnicodeError, DataError)
_NUL_REFUSED = "cannot contain NUL"

# The one policy of every page the project serves (the dashboard, the sign-in page, the admin,
# the API docs, error answers): nothing loads from another host, and the browser refuses it
# even when a script asks. Scripts run only from this origin, or inline with the request's
# nonce (``request.csp_nonce``: the dashboard's import map, the docs pages' start-up).
# Inline styles stay allowed (the admin and Redoc set them); Redoc runs its search in a
# worker made from a blob. 'self' in connect-src covers the same host's ws:/wss: (CSP Level 3).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)

_STATUS_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "throttled",
}


def client_fault(exc: BaseException) -> bool:
    """True for an exception a client's input caused, that our own checks should have caught first."""
    return isinstance(exc, CLIENT_FAULTS) or (isinstance(exc, ValueError) and _NUL_REFUSED in str(exc))


class _Middleware:
    """A middleware that serves sync and async requests alike."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        refused = self.refuse(request)
        if refused is not None:
            return refused
        try:
            return self.respond(request, self.get_response(request))
        finally:
            self.finish(request)

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        refused = self.refuse(request)
        if refused is not None:
            return refused
        try:
            return self.respond(request, await self.get_response(request))
        finally:
            self.finish(request)

    def refuse(self, request: HttpRequest) -> HttpResponseBase | None:
        return None

    def respond(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        return response

    def finish(self, request: HttpRequest) -> None:
        return None


def json_error(status: int, code: str, detail: str, **headers: str) -> JsonResponse:
    """The one error shape: ``{"error": code, "detail": sentence}``."""
    response = JsonResponse({"error": code, "detail": detail}, status=status)
    for name, value in headers.items():
        response[name] = value
    return response


class ClientFaultMiddleware(_Middleware):
    """No 5xx for what a client sent, whichever path it took.

    - A URL with a NUL character (``/admin/hosts/host/?q=%00``) is refused
      before any view passes it to the database, which cannot hold one.
    - The last resort: an exception a client's input caused below our own
      checks (``client_fault``) is a JSON 400, logged as one line, never a 500
      with a traceback. Our decoders and validators catch these first (each
      case has its own test); this catches the case nobody has thought of yet.
    - Bodies inflated for a request are given back to the process's budget once
      it is answered (``common.http.InflationBudget``).
    """

    def refuse(self, request: HttpRequest) -> HttpResponseBase | None:
        if "\x00" in request.path or _query_has_nul(request):
            return json_error(400, "bad_request", "The URL holds a NUL character.")
        return None

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponseBase | None:
        if not client_fault(exception):
            return None
        logger.warning(
            "refused a request whose input failed below validation: %s %s: %s: %s",
            request.method,
            request.path,
            type(exception).__name__,
            str(exception)[:200],
        )
        return json_error(400, "bad_request", "The request holds data this server cannot process.")

    def finish(self, request: HttpRequest) -> None:
        inflation_budget.release(request)


def _query_has_nul(request: HttpRequest) -> bool:
    return any("\x00" in key or any("\x00" in v for v in values) for key, values in request.GET.lists())


class JsonErrorsMiddleware(_Middleware):
    """Every error is JSON (docs/api.md), including those answered outside DRF.

    Django's own views answer a wrong method with an empty HTML 405
    (``PUT /admin/login/``); DRF views answer with their own renderer, which
    for the schema is YAML. Any error response that is not JSON becomes
    ``{"error", "detail"}`` with its status and headers (``Allow``,
    ``Retry-After``) kept. A DEBUG 500 page stays as it is, for the developer.
    """

    def respond(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if response.status_code < 400 or response.get("Content-Type", "").startswith("application/json"):
            return response
        if response.status_code >= 500 and settings.DEBUG:
            return response
        code = _STATUS_CODES.get(response.status_code, "server_error" if response.status_code >= 500 else "error")
        detail = getattr(response, "reason_phrase", "") or code
        if response.status_code == 405 and response.has_header("Allow"):
            detail = f"{request.method} is not allowed here; allowed: {response['Allow']}."
        replacement = json_error(response.status_code, code, detail)
        for name in ("Allow", "Retry-After", "WWW-Authenticate", "Vary"):
            if response.has_header(name):
                replacement[name] = response[name]
        for cookie in response.cookies.values():
            replacement.cookies[cookie.key] = cookie
        return replacement


class ContentSecurityPolicyMiddleware(_Middleware):
    """Every response carries ``CONTENT_SECURITY_POLICY``, with a nonce of its own.

    One place for the policy: before, each view set its own, and a page that
    did not (``/login/``, the admin) had none. It sits outside the middleware
    that answer on their own (errors turned JSON, static files, CSRF failures),
    so their answers carry it too. Views and templates use ``request.csp_nonce``
    for an inline script; any policy a view set is replaced.
    """

    def refuse(self, request: HttpRequest) -> HttpResponseBase | None:
        request.csp_nonce = secrets.token_urlsafe(16)  # type: ignore[attr-defined]
        return None

    def respond(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        nonce = getattr(request, "csp_nonce", None) or secrets.token_urlsafe(16)
        response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.format(nonce=nonce)
        return response
