"""``python manage.py inventory_import FILE``: load a floor (sites to hosts' units and power) from a JSON file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from facility.importing import ImportRefused, floor_import


class Command(BaseCommand):
    help = (
        "Import sites, rooms, rows, racks, power feeds and hosts' units from a JSON file (docs/operations.md). "
        "Idempotent; all or nothing: one bad row refuses the file, naming the row, and nothing is stored."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The floor file (JSON); '-' reads standard input.")

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["file"]
        try:
            raw = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
        except OSError as error:
            raise CommandError(f"{name}: {error.strerror}") from None
        try:
            result = floor_import(raw=raw)
        except ImportRefused as refused:
            raise CommandError(f"{name}: {refused.detail}") from None
        self.stdout.write(("Imported" if result.changed else "Nothing to change") + f": {result.summary()}")
