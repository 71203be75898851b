"""URL routes. Socket.IO is mounted outside Django, in ``twinsite.asgi``."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from hosts.views import HostRegisterView
from metrics.views import HostSeriesView, MetricsBatchView
from twin.views import HealthView, HostEventsView, TwinStateView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/hosts/register", HostRegisterView.as_view(), name="hosts-register"),
    path("api/metrics/batch", MetricsBatchView.as_view(), name="metrics-batch"),
    path("api/hosts/<str:hostname>/metrics", HostSeriesView.as_view(), name="host-metrics"),
    path("api/hosts/<str:hostname>/events", HostEventsView.as_view(), name="host-events"),
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
