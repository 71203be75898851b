"""Routes of the twin's document and its history. Included at the site's root by ``twinsite.urls``."""

from django.urls import path

from twin.views import HealthView, HostEventsView, TwinStateView

urlpatterns = [
    path("api/hosts/<str:hostname>/events", HostEventsView.as_view(), name="host-events"),
    path("api/twin/state", TwinStateView.as_view(), name="twin-state"),
    path("api/health", HealthView.as_view(), name="health"),
]
