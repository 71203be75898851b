"""Routes of measurements: agents' batches in, a host's series out. Included at the site's root by ``twinsite.urls``."""

from django.urls import path

from metrics.views import HostLabelledSeriesValuesView, HostLabelledSeriesView, HostSeriesView, MetricsBatchView

urlpatterns = [
    path("api/metrics/batch", MetricsBatchView.as_view(), name="metrics-batch"),
    path("api/hosts/<str:hostname>/metrics", HostSeriesView.as_view(), name="host-metrics"),
    path("api/hosts/<str:hostname>/series", HostLabelledSeriesView.as_view(), name="host-series"),
    path(
        "api/hosts/<str:hostname>/series/<int:series_id>",
        HostLabelledSeriesValuesView.as_view(),
        name="host-series-values",
    ),
]
