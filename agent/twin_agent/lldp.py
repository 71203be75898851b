"""The switch ports at the other end of this host's NICs, from lldpd's ``lldpctl -f json``, where it runs.

The twin may learn the fabric's links from them (a link from the switch down
to this host, naming the port and the NIC), but only to switches it already
knows: see docs/api.md. Without ``lldpctl``, or without lldpd answering, the
neighbours are skipped with the reason logged once; samples carry none.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import time
from collections.abc import Callable
from typing import Any

LLDPCTL_TIMEOUT_SECONDS = 5.0
# Neighbours change when someone recables: reading them once a minute is plenty.
REFRESH_SECONDS = 60.0
NAME_MAX = 253
PORT_MAX = 64


class LldpUnavailable(Exception):
    """No neighbours to be had here, and why."""


def neighbours_parse(document: Any) -> dict[str, dict[str, str]]:
    """``lldpctl -f json`` → {local interface: {"chassis": system name, "port": port name}}.

    lldpctl's JSON has two shapes: ``interface`` is an object keyed by name
    with one neighbour, a list of such one-key objects with several. A
    chassis without a system name (only a MAC id) names no switch the twin
    could know and is left out; the port is its ``ifname`` id when it has one,
    else its description, else whatever id it gives.
    """
    interfaces = (document or {}).get("lldp", {}).get("interface") or {}
    entries = interfaces if isinstance(interfaces, list) else [interfaces]
    out: dict[str, dict[str, str]] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        for local, about in entry.items():
            if not isinstance(about, dict) or local in out:
                continue
            chassis = about.get("chassis") or {}
            names = (
                [k for k, v in chassis.items() if isinstance(v, dict) and k != "id"]
                if isinstance(chassis, dict)
                else []
            )
            if not names:
                continue
            neighbour = {"chassis": names[0][:NAME_MAX]}
            port = _port_name(about.get("port") or {})
            if port:
                neighbour["port"] = port[:PORT_MAX]
            out[str(local)[:PORT_MAX]] = neighbour
    return out


def _port_name(port: dict[str, Any]) -> str | None:
    identity = port.get("id") if isinstance(port.get("id"), dict) else {}
    if identity.get("type") in ("ifname", "local") and identity.get("value"):
        return str(identity["value"])
    if port.get("descr"):
        return str(port["descr"])
    return str(identity["value"]) if identity.get("value") else None


class Lldp:
    """The neighbours, read at most once every ``refresh_seconds``; skipped with its reason when unavailable.

    A failing ``lldpctl`` (lldpd stopped) is tried again at the next refresh;
    its reason is logged once.
    """

    def __init__(
        self,
        *,
        command: str = "lldpctl",
        refresh_seconds: float = REFRESH_SECONDS,
        log: logging.Logger | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log or logging.getLogger("twin_agent.lldp")
        self.refresh_seconds, self.clock = refresh_seconds, clock
        self.skipped: str | None = None
        self.command = shutil.which(command)
        if self.command is None:
            self._skip(f"{command} is not installed (lldpd)")
        self._cached: dict[str, dict[str, str]] = {}
        self._read_at: float | None = None

    def _skip(self, reason: str) -> None:
        if self.skipped is None:
            self.skipped = reason
            self.log.info("lldp neighbours skipped: %s", reason)

    def neighbours(self) -> dict[str, dict[str, str]]:
        """{local interface: neighbour}, from the last read within ``refresh_seconds``."""
        if self.command is None:
            return {}
        now = self.clock()
        if self._read_at is None or now - self._read_at >= self.refresh_seconds:
            self._read_at = now
            try:
                self._cached = neighbours_parse(self._run())
            except LldpUnavailable as exc:
                self._skip(str(exc))
                self._cached = {}
        return self._cached

    def _run(self) -> Any:
        assert self.command is not None
        try:
            done = subprocess.run(
                [self.command, "-f", "json"],
                capture_output=True,
                text=True,
                timeout=LLDPCTL_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise LldpUnavailable(f"lldpctl did not answer within {LLDPCTL_TIMEOUT_SECONDS:g} s") from None
        except OSError as exc:
            raise LldpUnavailable(f"lldpctl cannot run: {exc}") from None
        if done.returncode != 0:
            why = (done.stderr.strip() or f"exit {done.returncode}").splitlines()[0]
            raise LldpUnavailable(f"lldpctl failed (is lldpd running?): {why[:200]}")
        try:
            return json.loads(done.stdout or "{}")
        except ValueError as exc:
            raise LldpUnavailable(f"lldpctl -f json gave no JSON: {exc}") from None
