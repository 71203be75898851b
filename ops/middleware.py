"""Middleware of the operator's side: a request id on each request, and HTTP metrics.

Both are sync and async capable, so they add no thread hop: on the event loop
when Django serves a request asynchronously (an async view, a static file), in
the request's thread when a sync chain serves it (``twinsite.handler``'s one
hop, the test client).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

from ops.logs import request_id_from_header, request_id_var
from ops.prometheus import HTTP_LATENCY, HTTP_METHODS, HTTP_REQUESTS, metrics_refresh_due

REQUEST_ID_HEADER = "X-Request-ID"
access_logger = logging.getLogger("ops.requests")

GetResponse = Callable[[HttpRequest], Any]


class _BothModes:
    """A middleware that runs on the loop in an async chain and in the caller's thread in a sync one."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.async_mode:
            return self._acall(request)
        before = self.before(request)
        return self.after(request, self.get_response(request), before)

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        before = self.before(request)
        return self.after(request, await self.get_response(request), before)

    def before(self, request: HttpRequest) -> float:
        return time.perf_counter()

    def after(self, request: HttpRequest, response: HttpResponseBase, started: float) -> HttpResponseBase:
        return response


class RequestIdMiddleware(_BothModes):
    """Gives each request an id, logs it on every line, echoes it in ``X-Request-ID``.

    The id is the proxy's ``X-Request-ID`` when it is well-formed (nginx sets
    it, so its access log and ours share it), else a new one. It is set in a
    context variable and deliberately not reset on the way out: under ASGI each
    request runs in a task of its own whose context ends with it, and Django
    logs a 4xx or 5xx ("Bad Request: ...") after the middleware has returned.
    """

    def before(self, request: HttpRequest) -> float:
        request_id = request_id_from_header(request.headers.get(REQUEST_ID_HEADER))
        request_id_var.set(request_id)
        request.request_id = request_id  # type: ignore[attr-defined]
        return super().before(request)

    def after(self, request: HttpRequest, response: HttpResponseBase, started: float) -> HttpResponseBase:
        response[REQUEST_ID_HEADER] = request.request_id  # type: ignore[attr-defined]
        if settings.LOG_REQUESTS:
            elapsed_ms = (time.perf_counter() - started) * 1000
            # The path only: a query string may carry what must not be logged.
            access_logger.info(
                "%s %s %s %.1fms",
                request.method,
                request.path,
                response.status_code,
                elapsed_ms,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round(elapsed_ms, 3),
                    "view": view_label(request),
                },
            )
        return response


class HttpMetricsMiddleware(_BothModes):
    """Counts each request by view, method and status, and times it."""

    def after(self, request: HttpRequest, response: HttpResponseBase, started: float) -> HttpResponseBase:
        view = view_label(request)
        method = request.method if request.method in HTTP_METHODS else "other"
        HTTP_LATENCY.labels(view, method).observe(time.perf_counter() - started)
        HTTP_REQUESTS.labels(view, method, str(response.status_code)).inc()
        metrics_refresh_due()
        return response


def view_label(request: HttpRequest) -> str:
    """A bounded name for what answered: the URL's name, ``static``, or ``unresolved``.

    Never the raw path: every distinct label value is a time series kept forever.
    """
    match = getattr(request, "resolver_match", None)
    if match is not None:
        return match.view_name or match.route or "unnamed"
    if request.path.startswith("/" + settings.STATIC_URL.lstrip("/")):
        return "static"
    return "unresolved"
