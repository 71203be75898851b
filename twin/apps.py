from django.apps import AppConfig


class TwinConfig(AppConfig):
    """The twin snapshot, its status history and its live push over Socket.IO."""

    name = "twin"

    def ready(self) -> None:
        from twin import jobs  # noqa: F401  (registers the status recorder)
