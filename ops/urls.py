"""Routes of the operator's side, included at the site's root by ``twinsite.urls``."""

from django.urls import path

from ops import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.ReadyzView.as_view(), name="readyz"),
    path("metrics", views.metrics, name="metrics"),
    path("api/docs/", views.SwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", views.RedocView.as_view(url_name="schema"), name="api-redoc"),
]
