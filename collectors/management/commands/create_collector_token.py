"""``manage.py create_collector_token --name NAME``: a bearer token for a Prometheus's remote_write."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from collectors.models import CollectorToken
from collectors.services import collector_token_create


class Command(BaseCommand):
    help = "Create a collector token (printed once, stored hashed) for Prometheus remote-write to /api/v1/write."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True, help="A unique name, e.g. the Prometheus that writes with it.")

    def handle(self, *args: Any, name: str, **options: Any) -> None:
        if CollectorToken.objects.filter(name=name).exists():
            raise CommandError(f"A collector token named {name!r} exists; revoke it in the admin or pick another name.")
        _, token = collector_token_create(name=name)
        self.stdout.write(token)
        self.stderr.write(
            "Shown once. In prometheus.yml: remote_write: [{url: <twin>/api/v1/write, "
            "authorization: {credentials: <this token>}}]"
        )
