"""Operator endpoints: ``/healthz``, ``/readyz``, ``/metrics``, and the API docs served offline.

Plain Django views, not DRF: they answer before any authentication or
throttling a reader's request goes through, and they stay cheap.
"""

from __future__ import annotations

import asyncio
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_safe
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerView
from health_check.base import HealthCheck
from health_check.views import HealthCheckView

from ops.checks import READINESS_CHECKS
from ops.prometheus import metrics_access, metrics_render


@require_safe
async def healthz(request: HttpRequest) -> JsonResponse:
    """``GET /healthz``: the process answers. Touches nothing else, so a restart is never caused by a dependency."""
    response = JsonResponse({"status": "ok"})
    add_never_cache_headers(response)
    return response


class ReadyzView(HealthCheckView):
    """``GET /readyz``: this process can serve: database reachable and migrated, channel layer reachable.

    ``200 {"status": "ready", "checks": {...}}`` or ``503 {"error": "not_ready",
    "detail": ..., "checks": {...}}``, each check with ``ok``, ``detail`` and
    ``seconds``. A load balancer stops sending traffic on a 503 and resumes
    when the checks pass again; it answers JSON whatever the Accept header.
    """

    checks = READINESS_CHECKS
    http_method_names = ["get", "head"]

    async def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
        self.results = await asyncio.gather(*(check.get_result() for check in self.get_checks()))
        checks = {
            _check_name(result.check): {
                "ok": result.error is None,
                "detail": "working" if result.error is None else str(result.error),
                "seconds": round(result.time_taken, 4),
            }
            for result in self.results
        }
        failed = [name for name, check in checks.items() if not check["ok"]]
        if not failed:
            return JsonResponse({"status": "ready", "checks": checks})
        detail = "Not ready: " + "; ".join(f"{name}: {checks[name]['detail']}" for name in failed) + "."
        return JsonResponse({"error": "not_ready", "detail": detail, "checks": checks}, status=503)


def _check_name(check: HealthCheck) -> str:
    return getattr(type(check), "name", type(check).__name__)


@require_safe
async def metrics(request: HttpRequest) -> HttpResponse:
    """``GET /metrics``: the Prometheus exposition, to the addresses and token the settings allow."""
    allowed, why = metrics_access(request)
    if not allowed:
        return JsonResponse({"error": "forbidden", "detail": why}, status=403)
    body, content_type = metrics_render(request.headers.get("Accept"))
    response = HttpResponse(body, content_type=content_type)
    add_never_cache_headers(response)
    return response


class SwaggerView(SpectacularSwaggerView):
    """Swagger UI from the project's static files (drf-spectacular-sidecar), nothing from outside.

    The docs pages may load nothing from outside the twin: the project's policy
    (``common.middleware.CONTENT_SECURITY_POLICY``) stops it in the browser, and
    the pages' inline start-up scripts run by the request's nonce (the templates).
    """

    template_name = "ops/swagger_ui.html"

    @extend_schema(exclude=True)  # as drf-spectacular's own, which this replaces
    def get(self, request: Any, *args: Any, **kwargs: Any) -> HttpResponse:
        return super().get(request, *args, **kwargs)


class RedocView(SpectacularRedocView):
    """Redoc from the project's static files; drf-spectacular's own page loads Google fonts."""

    template_name = "ops/redoc.html"

    @extend_schema(exclude=True)  # as drf-spectacular's own, which this replaces
    def get(self, request: Any, *args: Any, **kwargs: Any) -> HttpResponse:
        return super().get(request, *args, **kwargs)
