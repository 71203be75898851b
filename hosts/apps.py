from django.apps import AppConfig


class HostsConfig(AppConfig):
    """Racks, hosts, links and agent credentials."""

    name = "hosts"

    def ready(self) -> None:
        from django.conf import settings

        if settings.TWIN_AGENT_AUTH == "open":
            import logging

            logging.getLogger("hosts").warning(
                "TWIN_AGENT_AUTH=open: unsigned batches are accepted and create hosts. "
                "Use this in a trusted lab only; set TWIN_AGENT_AUTH=signed anywhere else."
            )
