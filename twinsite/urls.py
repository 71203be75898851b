"""URL routes: each app's own ``urls.py``, included at the root (Socket.IO is mounted in ``twinsite.asgi``)."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

import twinsite.admin  # noqa: F401  (the host admin, composed from every layer)

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("hosts.urls")),
    path("", include("metrics.urls")),
    path("", include("collectors.urls")),
    path("", include("commands.urls")),
    path("", include("twin.urls")),
    path("", include("alerts.urls")),
    path("", include("facility.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # /healthz, /readyz, /metrics, /api/docs/, /api/redoc/
    path("", include("ops.urls")),
    path("", include("dashboard.urls")),
]

handler400 = "common.errors.bad_request"
handler403 = "common.errors.permission_denied"
handler404 = "common.errors.not_found"
handler500 = "common.errors.server_error"
