from django.apps import AppConfig


class FleetConfig(AppConfig):
    """The fleet simulator's management command; a client of the twin, with no models of its own."""

    name = "fleet"
    verbose_name = "Fleet simulator"
