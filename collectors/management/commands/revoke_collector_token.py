"""``manage.py revoke_collector_token --name NAME``: the token's next write is refused."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from collectors.models import CollectorToken
from collectors.services import collector_tokens_revoke


class Command(BaseCommand):
    help = "Revoke a collector token."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)

    def handle(self, *args: Any, name: str, **options: Any) -> None:
        tokens = CollectorToken.objects.filter(name=name)
        if not tokens.exists():
            raise CommandError(f"No collector token is named {name!r}.")
        count = collector_tokens_revoke(tokens=tokens, now=timezone.now())
        self.stdout.write(f"Revoked {count} token(s) named {name!r}." if count else f"{name!r} was already revoked.")
