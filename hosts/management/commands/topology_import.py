"""``manage.py topology_import FILE``: load the network fabric (switches in tiers, links) from a JSON file."""

from __future__ import annotations

import sys
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from hosts.topology import TopologyRefused, topology_import


class Command(BaseCommand):
    help = (
        "Load switches (with their roles) and links from a JSON topology file (docs/operations.md): "
        "every row checked first, all stored in one transaction or none; loading it again changes nothing."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("file", help="The topology file ('-' for standard input).")

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["file"]
        try:
            body = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {name}: {exc.strerror}.") from None
        try:
            result = topology_import(body=body)
        except TopologyRefused as exc:
            for error in exc.errors:
                self.stderr.write(f"  {error}")
            raise CommandError(f"The topology was not loaded: {len(exc.errors)} error(s), nothing stored.") from None
        if not result.changed:
            self.stdout.write("Nothing to change: the inventory already holds this topology.")
            return
        self.stdout.write(
            f"Switches: {result.switches_created} created, {result.switches_updated} updated. "
            f"Links: {result.links_created} created, {result.links_updated} updated. "
            f"Interfaces: {result.interfaces_created} created. "
            f"Default uplinks removed: {len(result.uplinks_removed)}."
        )
