from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """The live dashboard at ``/``: a page and its static files, on top of the twin's API and Socket.IO."""

    name = "dashboard"
    verbose_name = "Dashboard"
