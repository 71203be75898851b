from django.apps import AppConfig


class HostsConfig(AppConfig):
    """Racks, hosts, links and agent credentials."""

    name = "hosts"
