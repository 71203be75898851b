"""The dashboard's pages; included at the site's root by ``twinsite.urls``."""

from django.urls import path

from dashboard.views import DashboardLoginView, DashboardLogoutView, dashboard_page, favicon

app_name = "dashboard"

urlpatterns = [
    path("", dashboard_page, name="index"),
    path("login/", DashboardLoginView.as_view(), name="login"),
    path("logout/", DashboardLogoutView.as_view(), name="logout"),
    path("favicon.ico", favicon, name="favicon"),
]
