from django.apps import AppConfig


class MetricsConfig(AppConfig):
    """Metric samples, their validation and ingestion, history queries."""

    name = "metrics"
