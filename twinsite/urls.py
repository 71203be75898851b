"""URL routes. Socket.IO is mounted outside Django, in ``twinsite.asgi``."""

from django.contrib import admin
from django.urls import path

from metrics.views import MetricsBatchView
from twin.views import TwinStateView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/metrics/batch", MetricsBatchView.as_view(), name="metrics-batch"),
    path("api/twin/state", TwinStateView.as_view(), name="twin-state"),
]

handler400 = "twinsite.errors.bad_request"
handler403 = "twinsite.errors.permission_denied"
handler404 = "twinsite.errors.not_found"
handler500 = "twinsite.errors.server_error"
