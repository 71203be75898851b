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
from twin_agent.lldp import Lldp
from twin_agent.power import Sensors


def platform_name() -> str:
    """``Linux-x86_64``, as the seed's example: the OS and the machine."""
    return f"{platform.system()}-{platform.machine()}"


# The server's limit (metrics/schema.py INTERFACES_MAX): a host with more NICs reports its busiest.
INTERFACES_MAX = 64
SPEED_MBPS_MAX = 10_000_000
MAC_LENGTH = 17  # aa:bb:cc:dd:ee:ff


def _is_loopback(nic: str, flags: str = "") -> bool:
    return nic == "lo" or (nic.startswith("lo") and nic[2:].isdigit()) or "loopback" in flags.split(",")


def interfaces_read() -> list[dict[str, Any]]:
    """Each interface but loopback with its counters, speed and MAC, in the sample's ``interfaces`` shape.

    1. Counters from ``net_io_counters(pernic=True)``; loopback is skipped
       (by name, and by the ``loopback`` flag psutil reads from the kernel).
    2. Speed from ``net_if_stats`` in Mbit/s; psutil says 0 when the driver
       does not know (virtual NICs, some VMs), so the key is left out then.
    3. MAC from ``net_if_addrs`` (the link-layer address, ``psutil.AF_LINK``);
       left out when the NIC has none or an all-zero one.
    Every one is returned; ``interfaces_busiest`` cuts to what the server keeps.
    """
    counters = psutil.net_io_counters(pernic=True)
    try:
        stats = psutil.net_if_stats()
    except OSError:  # some containers refuse the ioctl; counters alone still measure the links
        stats = {}
    try:
        addresses = psutil.net_if_addrs()
    except OSError:
        addresses = {}
    out: list[dict[str, Any]] = []
    for nic, c in counters.items():
        stat = stats.get(nic)
        if _is_loopback(nic, getattr(stat, "flags", "")):
            continue
        entry: dict[str, Any] = {"name": nic[:64], "rx_bytes": c.bytes_recv, "tx_bytes": c.bytes_sent}
        if stat is not None and 0 < stat.speed <= SPEED_MBPS_MAX:
            entry["speed_mbps"] = int(stat.speed)
        mac = _mac_of(addresses.get(nic, ()))
        if mac:
            entry["mac"] = mac
        out.append(entry)
    return out


def interfaces_busiest(interfaces: list[dict[str, Any]], *, limit: int = INTERFACES_MAX) -> list[dict[str, Any]]:
    """At most ``limit`` interfaces, the busiest (by total bytes) when there are more, in their original order."""
    if len(interfaces) <= limit:
        return interfaces
    busiest = sorted(range(len(interfaces)), key=lambda i: -(interfaces[i]["rx_bytes"] + interfaces[i]["tx_bytes"]))
    return [interfaces[i] for i in sorted(busiest[:limit])]


def _mac_of(addresses: Any) -> str | None:
    for address in addresses:
        if address.family == psutil.AF_LINK:
            mac = str(address.address).lower().replace("-", ":")
            if len(mac) == MAC_LENGTH and mac != "00:00:00:00:00:00":
                return mac
    return None


class Collector:
    """Reads one sample of the host's metrics at a time.

    CPU load is the busy share of all cores since the previous reading (psutil
    keeps the last one), so each sample covers the interval before it. Network
    counters are the sum over every interface but loopback: the host's traffic
    on the links the twin draws; ``interfaces`` carries each NIC's own
    counters, so a link that names its interface shows that NIC's traffic
    alone, and its LLDP neighbour where lldpd runs (``twin_agent.lldp``).
    Power and temperature come from what the machine offers
    (``twin_agent.power``) and are left out where it offers nothing.
    Timestamps strictly rise, so two samples never
    share one (the server keeps one sample per host and timestamp).
    """

    def __init__(
        self,
        *,
        hostname: str,
        rack: str | None = None,
        position: dict[str, float] | None = None,
        sensors: Sensors | None = None,
        lldp: Lldp | None = None,
    ) -> None:
        self.hostname = hostname
        self.sensors = sensors if sensors is not None else Sensors()
        self.lldp = lldp if lldp is not None else Lldp()
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
        interfaces = interfaces_read()
        neighbours = self.lldp.neighbours()
        for interface in interfaces:
            if interface["name"] in neighbours:
                interface["neighbor"] = neighbours[interface["name"]]
        tx = sum(i["tx_bytes"] for i in interfaces)
        rx = sum(i["rx_bytes"] for i in interfaces)
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
        sample.update(self.sensors.read())
        if interfaces:
            sample["interfaces"] = interfaces_busiest(interfaces)
        if self.rack:
            sample["rack"] = self.rack
        if self.position is not None:
            sample["position"] = self.position
        return sample


def sample_bytes(sample: dict[str, Any]) -> bytes:
    """A sample as the compact JSON the spool keeps and the batch carries."""
    return json.dumps(sample, separators=(",", ":")).encode()
