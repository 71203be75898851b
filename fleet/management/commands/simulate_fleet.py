"""``manage.py simulate_fleet``: drive simulated hosts against a running twin.

The simulator is a client: it reaches the server only over HTTP, through the
agent package's own protocol code (``twin_agent.simulate``). Two things it
takes from the server's side, in the database the server uses: an enrollment
key, limited to the fleet's registrations and to a day, and, once the hosts
are enrolled, the fleet's leaf-spine fabric, loaded as a topology file
(``hosts.topology.topology_import``, what ``manage.py topology_import`` does).
"""

from __future__ import annotations

import json
import sys
import time
from argparse import ArgumentParser
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from hosts.services import enrollment_key_create
from hosts.topology import TopologyRefused, topology_import

try:
    from twin_agent.logs import logging_setup
    from twin_agent.protocol import EnrollmentRefused
    from twin_agent.simulate import simulate_arguments, simulate_check, simulate_run
    from twin_agent.transport import TransportError
except ImportError:  # the server's image installs only requirements.txt
    simulate_arguments = None  # type: ignore[assignment]


class Command(BaseCommand):
    help = (
        "Enroll N simulated hosts with a running twin (--server) and send their metrics through the agent's "
        "protocol: racks on a floor grid, hosts going silent and coming back, simulated commands."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        if simulate_arguments is not None:
            simulate_arguments(parser, enrollment_key=False)

    def handle(self, *args: Any, **options: Any) -> None:
        if simulate_arguments is None:
            raise CommandError("The agent package is not installed: pip install ./agent")
        logging_setup(fmt=options["log_format"], level="warning")
        problem = simulate_check(options)
        if problem:
            raise CommandError(problem)
        _, key = enrollment_key_create(
            name=f"simulate_fleet {timezone.now():%Y-%m-%d %H:%M}",
            max_uses=options["hosts"],
            expires_at=timezone.now() + timedelta(days=1),
        )
        live = sys.stderr.isatty()

        def out(line: str) -> None:
            self.stderr.write(("\r\033[K" if live else "") + line)
            self.stderr.flush()

        def progress(line: str) -> None:
            if live:
                self.stderr.write("\r\033[K" + line, ending="")
                self.stderr.flush()
            else:
                out(line)

        options["core"] = options.get("core") or settings.TWIN_CORE_HOSTNAME
        try:
            stats = simulate_run(
                options, enrollment_key=key, out=out, progress=progress, live=live, topology_load=_topology_load
            )
        except (TransportError, EnrollmentRefused) as exc:
            raise CommandError(str(exc)) from None
        if stats.refused:
            raise CommandError(f"the server refused the credentials of {stats.refused} simulated hosts")


def _topology_load(document: dict[str, Any]) -> str:
    """Store the fleet's fabric (switches, links, interfaces) and say what changed."""
    started = time.monotonic()
    try:
        result = topology_import(body=json.dumps(document).encode())
    except TopologyRefused as exc:
        raise CommandError(f"the simulated fabric was refused: {exc}") from None
    switches, links = len(document["switches"]), len(document["links"])
    if not result.changed:
        return f"the fabric: {switches} switches and {links} links, already loaded"
    return (
        f"the fabric: {switches} switches, {links} links ({result.switches_created} switches and "
        f"{result.links_created} links new, {len(result.uplinks_removed)} default uplinks to the core replaced) "
        f"in {time.monotonic() - started:.1f} s"
    )
