from django.apps import AppConfig


class CommandsConfig(AppConfig):
    """Commands operators send to hosts, their invocations on each host, and their lifecycle."""

    name = "commands"

    def ready(self) -> None:
        # Registers the deadline and retention jobs with the jobs app.
        from commands import jobs  # noqa: F401
