"""Routes of the twin's document and its history. Included at the site's root by ``twinsite.urls``."""

from django.urls import path

from twin.views import (
    FabricImpactView,
    HealthView,
    HostEventsView,
    TwinImpactView,
    TwinMetricsView,
    TwinPathView,
    TwinStateView,
)

urlpatterns = [
    path("api/hosts/<str:hostname>/events", HostEventsView.as_view(), name="host-events"),
    path("api/twin/state", TwinStateView.as_view(), name="twin-state"),
    path("api/twin/metrics", TwinMetricsView.as_view(), name="twin-metrics"),
    path("api/twin/impact", TwinImpactView.as_view(), name="twin-impact"),
    path("api/twin/path", TwinPathView.as_view(), name="twin-path"),
    path("api/fabric/impact", FabricImpactView.as_view(), name="fabric-impact"),
    path("api/health", HealthView.as_view(), name="health"),
]
