"""``manage.py create_enrollment_key``: a key agents register hosts with, printed once."""

from __future__ import annotations

from argparse import ArgumentParser
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from hosts.services import enrollment_key_create


class Command(BaseCommand):
    help = "Create an enrollment key for agents and print it once; only its hash is stored."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--name", default="command line", help="What the key is for.")
        parser.add_argument("--expires-in-hours", type=float, help="Refuse the key after this many hours.")
        parser.add_argument("--max-uses", type=int, help="Refuse the key after this many registrations.")

    def handle(self, *args: Any, **options: Any) -> None:
        hours, max_uses = options["expires_in_hours"], options["max_uses"]
        if hours is not None and hours <= 0:
            raise CommandError("--expires-in-hours must be positive.")
        if max_uses is not None and max_uses <= 0:
            raise CommandError("--max-uses must be positive.")
        expires_at = timezone.now() + timedelta(hours=hours) if hours is not None else None
        _, secret = enrollment_key_create(name=options["name"], expires_at=expires_at, max_uses=max_uses)
        self.stderr.write("Enrollment key (shown once; store it in your agents' configuration):")
        self.stdout.write(secret)
