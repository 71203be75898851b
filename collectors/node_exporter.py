"""The seed's six fields from node_exporter's series, one scrape at a time.

Pure functions: ``series_key`` says whether (and as what) a series is kept,
``scrape_sample`` turns the kept values of one scrape into a sample in the
seed's shape. What they read (node_exporter 1.x names):

- CPU load: ``node_cpu_seconds_total`` over every CPU and mode, as the busy share of the time
  between this scrape and the last one a sample was stored from (idle and iowait count as
  idle, as psutil and the twin's agent count them); in percent.
- memory: ``1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes``, in percent.
- load average: ``node_load1``; uptime: the scrape's time less ``node_boot_time_seconds``.
- network: the totals of ``node_network_{transmit,receive}_bytes_total`` over every device
  but loopback (counters; the twin derives throughput from them, reset-safe).
- platform from ``node_uname_info``, agent version from ``node_exporter_build_info``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from common.formats import iso_utc

CPU_IDLE_MODES = frozenset({"idle", "iowait"})
LOOPBACK_DEVICES = frozenset({"lo"})
# What a stored sample is made of; every other series is not kept (yet: labelled metrics).
KEPT_NAMES = frozenset(
    {
        "node_cpu_seconds_total",
        "node_memory_MemTotal_bytes",
        "node_memory_MemAvailable_bytes",
        "node_load1",
        "node_boot_time_seconds",
        "node_network_transmit_bytes_total",
        "node_network_receive_bytes_total",
        "node_uname_info",
        "node_exporter_build_info",
    }
)
_SINGLE = {
    "node_memory_MemTotal_bytes": "mem_total",
    "node_memory_MemAvailable_bytes": "mem_available",
    "node_load1": "load1",
    "node_boot_time_seconds": "boot_time",
}
REQUIRED_KEYS = tuple(_SINGLE.values())


def series_key(name: str, labels: dict[str, str]) -> str | None:
    """The key a kept series' values are stored under, or None when it is not one of ``KEPT_NAMES``."""
    if name in _SINGLE:
        return _SINGLE[name]
    if name == "node_cpu_seconds_total":
        return f"cpu|{labels.get('cpu', '')}|{labels.get('mode', '')}"
    if name in ("node_network_transmit_bytes_total", "node_network_receive_bytes_total"):
        device = labels.get("device", "")
        if device in LOOPBACK_DEVICES:
            return None
        return f"{'tx' if 'transmit' in name else 'rx'}|{device}"
    if name == "node_uname_info":
        return f"platform|{labels.get('sysname', '')}-{labels.get('machine', '')}"
    if name == "node_exporter_build_info":
        return f"version|node_exporter {labels.get('version', '')}".rstrip()
    return None


def instance_host(instance: str) -> str:
    """``host:port`` (or ``[v6]:port``) without the port: Prometheus's ``instance`` label as a hostname."""
    if instance.startswith("["):
        return instance[1:].partition("]")[0]
    host, sep, port = instance.rpartition(":")
    return host if sep and port.isdigit() and ":" not in host else instance


def scrape_counts(values: dict[str, list[float]], at_ms: int) -> dict[str, int]:
    """How many CPU series and network devices the scrape at ``at_ms`` has so far."""
    keys = [k for k, (ts, _) in values.items() if ts == at_ms]
    return {"cpus": sum(k.startswith("cpu|") for k in keys), "devices": sum(k.startswith("tx|") for k in keys)}


def scrape_sample(
    *, hostname: str, values: dict[str, list[float]], at_ms: int, emitted: dict[str, Any]
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The sample the scrape at ``at_ms`` gives, and the new baseline; (None, baseline) when it gives none yet.

    ``emitted`` is the baseline of the last stored sample (its time, CPU counters and
    counts). The first scrape of a host only sets the baseline: a CPU share needs two.
    """
    now = {k: v for k, (ts, v) in values.items() if ts == at_ms}
    cpu = {k: v for k, v in now.items() if k.startswith("cpu|")}
    tx = [v for k, v in now.items() if k.startswith("tx|")]
    rx = [v for k, v in now.items() if k.startswith("rx|")]
    if not cpu or not tx or not rx or any(k not in now for k in REQUIRED_KEYS):
        return None, emitted
    baseline = {"at": at_ms, "cpu": cpu, **scrape_counts(values, at_ms)}
    if "at" not in emitted:  # the host's first scrape: the baseline of the next
        return None, baseline
    if emitted["at"] >= at_ms:  # this scrape or an older one: nothing new
        return None, emitted
    previous = emitted.get("cpu") or {}
    total = idle = 0.0
    for key, value in cpu.items():
        before = previous.get(key)
        if before is None or value < before:  # a new CPU, or a counter reset: no difference to take
            continue
        total += value - before
        if key.rpartition("|")[2] in CPU_IDLE_MODES:
            idle += value - before
    if total <= 0:
        return None, baseline
    mem_total = now["mem_total"]
    sample: dict[str, Any] = {
        "hostname": hostname,
        "timestamp": iso_utc(datetime.fromtimestamp(at_ms / 1000, UTC)),
        "cpu_load": round(100.0 * (total - idle) / total, 3),
        "memory_used_percent": round(100.0 * (1.0 - now["mem_available"] / mem_total), 3) if mem_total > 0 else 0.0,
        "load_average": now["load1"],
        "uptime_seconds": max(0, int(at_ms / 1000 - now["boot_time"])),
        "net_bytes_tx": int(sum(tx)),
        "net_bytes_rx": int(sum(rx)),
    }
    for key in now:
        if key.startswith("platform|"):
            sample["platform"] = key.partition("|")[2][:128]
        elif key.startswith("version|"):
            sample["agent_version"] = key.partition("|")[2][:128]
    return sample, baseline
