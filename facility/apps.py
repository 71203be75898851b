from django.apps import AppConfig


class FacilityConfig(AppConfig):
    """The physical twin: sites, rooms, rows, rack units and power feeds."""

    name = "facility"
