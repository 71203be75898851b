import logging

from django.apps import AppConfig
from django.conf import settings


class HostsConfig(AppConfig):
    """Racks, hosts, links and agent credentials."""

    name = "hosts"


def open_mode_warn() -> None:
    """Warn, once at a server's start, that unsigned batches are accepted (``TWIN_AGENT_AUTH=open``).

    Called where a server loads the app (``twinsite.asgi``), not in ``ready()``:
    every management command (``make manage``, ``migrate``) would print it too,
    though none of them accepts a batch.
    """
    if settings.TWIN_AGENT_AUTH == "open":
        logging.getLogger("hosts").warning(
            "TWIN_AGENT_AUTH=open: unsigned batches are accepted and create hosts. "
            "Use this in a trusted lab only; set TWIN_AGENT_AUTH=signed anywhere else."
        )
