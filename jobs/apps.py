from django.apps import AppConfig


class JobsConfig(AppConfig):
    """Background jobs: each runs exactly once per period across every server process."""

    name = "jobs"
