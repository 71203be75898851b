from django.apps import AppConfig


class AlertsConfig(AppConfig):
    """Alert rules over what the twin holds, their alerts' lifecycle, silences and delivery to receivers."""

    name = "alerts"

    def ready(self) -> None:
        from alerts import jobs  # noqa: F401  (registers the evaluator and the sender)
