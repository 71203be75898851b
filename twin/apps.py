from django.apps import AppConfig


class TwinConfig(AppConfig):
    """The twin snapshot and its live push over Socket.IO."""

    name = "twin"
