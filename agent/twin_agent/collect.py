"""The machine's own metrics, read with psutil, as one sample of the seed's batch."""

from __future__ import annotations

import json
import platform
import threading
import time
from datetime import datetime, timedelta
from typing import Any

import psutil

from twin_agent import __version__
from twin_agent.formats import iso_utc, utc_now


def platform_name() -> str:
    """``Linux-x86_64``, as the seed's example: the OS and the machine."""
    return f"{platform.system()}-{platform.machine()}"


def _is_loopback(nic: str) -> bool:
    return nic == "lo" or (nic.startswith("lo") and nic[2:].isdigit())


class Collector:
    """Reads one sample of the host's metrics at a time.

    CPU load is the busy share of all cores since the previous reading (psutil
    keeps the last one), so each sample covers the interval before it. Network
    counters are the sum over every interface but loopback: the host's traffic
    on the links the twin draws. Timestamps strictly rise, so two samples never
    share one (the server keeps one sample per host and timestamp).
    """

    def __init__(
        self,
        *,
        hostname: str,
        rack: str | None = None,
        position: dict[str, float] | None = None,
    ) -> None:
        self.hostname = hostname
        self.rack = rack
        self.position = position
        self.platform = platform_name()
        self._last: datetime | None = None
        self._lock = threading.Lock()
        psutil.cpu_percent(interval=None)  # the first reading only starts the measurement

    def sample(self) -> dict[str, Any]:
        """A sample of now, in the batch's snake_case shape."""
        with self._lock:
            now = utc_now()
            now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # the wire carries milliseconds
            if self._last is not None and now <= self._last:
                now = self._last + timedelta(milliseconds=1)
            self._last = now
            cpu = psutil.cpu_percent(interval=None)
        tx = rx = 0
        for nic, counters in psutil.net_io_counters(pernic=True).items():
            if not _is_loopback(nic):
                tx += counters.bytes_sent
                rx += counters.bytes_recv
        sample: dict[str, Any] = {
            "hostname": self.hostname,
            "timestamp": iso_utc(now),
            "cpu_load": round(min(max(cpu, 0.0), 100.0), 2),
            "memory_used_percent": round(psutil.virtual_memory().percent, 2),
            "load_average": round(psutil.getloadavg()[0], 2),
            "uptime_seconds": round(max(0.0, time.time() - psutil.boot_time()), 1),
            "agent_version": __version__,
            "platform": self.platform,
            "net_bytes_tx": tx,
            "net_bytes_rx": rx,
        }
        if self.rack:
            sample["rack"] = self.rack
        if self.position is not None:
            sample["position"] = self.position
        return sample


def sample_bytes(sample: dict[str, Any]) -> bytes:
    """A sample as the compact JSON the spool keeps and the batch carries."""
    return json.dumps(sample, separators=(",", ":")).encode()
