from django.apps import AppConfig


class MetricsConfig(AppConfig):
    """Metric samples, their validation and ingestion, history queries."""

    name = "metrics"

    def ready(self) -> None:
        from metrics import jobs  # noqa: F401  (registers the history's jobs)
