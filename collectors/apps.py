from django.apps import AppConfig


class CollectorsConfig(AppConfig):
    """Samples from other collectors than the twin's agent: Prometheus remote-write."""

    name = "collectors"
