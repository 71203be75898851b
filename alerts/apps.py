from django.apps import AppConfig


class AlertsConfig(AppConfig):
    """Alert rules over what the twin holds, their alerts' lifecycle, silences and delivery to receivers."""

    name = "alerts"

    def ready(self) -> None:
        from alerts import jobs  # noqa: F401  (registers the evaluator and the sender)
        from alerts.selectors import alerts_active_at
        from twin.past import past_read_register

        # GET /api/twin/state?at= shows what fired then (the time slider), as the key "alerts".
        past_read_register("alerts", lambda at: alerts_active_at(at=at))
