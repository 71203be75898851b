"""URL routes. Socket.IO is mounted outside Django, in ``twinsite.asgi``."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

import twinsite.admin  # noqa: F401  (the host admin, composed from every layer)
from commands.views import (
    ActionCatalogueView,
    CommandCancelView,
    CommandDetailView,
    CommandResultView,
    CommandsView,
    pending_view,
)
from hosts.views import HostRegisterView
from metrics.views import HostSeriesView, MetricsBatchView
from twin.views import HealthView, HostEventsView, TwinStateView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/hosts/register", HostRegisterView.as_view(), name="hosts-register"),
    path("api/metrics/batch", MetricsBatchView.as_view(), name="metrics-batch"),
    path("api/hosts/<str:hostname>/metrics", HostSeriesView.as_view(), name="host-metrics"),
    path("api/hosts/<str:hostname>/events", HostEventsView.as_view(), name="host-events"),
    path("api/commands", CommandsView.as_view(), name="commands"),
    path("api/commands/actions", ActionCatalogueView.as_view(), name="commands-actions"),
    path("api/commands/pending", pending_view, name="commands-pending"),
    path("api/commands/<int:command_id>", CommandDetailView.as_view(), name="command"),
    path("api/commands/<int:command_id>/cancel", CommandCancelView.as_view(), name="command-cancel"),
    path("api/commands/<int:command_id>/result", CommandResultView.as_view(), name="command-result"),
    path("api/twin/state", TwinStateView.as_view(), name="twin-state"),
    path("api/health", HealthView.as_view(), name="health"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # /healthz, /readyz, /metrics, /api/docs/, /api/redoc/
    path("", include("ops.urls")),
    path("", include("dashboard.urls")),
]

handler400 = "common.errors.bad_request"
handler403 = "common.errors.permission_denied"
handler404 = "common.errors.not_found"
handler500 = "common.errors.server_error"
