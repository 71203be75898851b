"""Remote-write bodies as Prometheus sends them, for the collectors' tests and benchmark."""

from __future__ import annotations

import cramjam

from collectors.prompb.prometheus_remote_pb2 import WriteRequest

Series = tuple[dict[str, str], list[tuple[float, int]]]


def write_body(series: list[Series]) -> bytes:
    """A snappy-compressed ``WriteRequest`` of ``series``: (labels with ``__name__``, [(value, timestamp_ms)])."""
    request = WriteRequest()
    for labels, samples in series:
        ts = request.timeseries.add()
        for name in sorted(labels):
            ts.labels.add(name=name, value=labels[name])
        for value, at in samples:
            ts.samples.add(value=value, timestamp=at)
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


def node_scrape(
    at_ms: int,
    *,
    host: str = "node-a",
    label: str = "hostname",
    cpus: int = 2,
    busy: float = 0.0,
    idle: float = 0.0,
    mem_total: float = 8e9,
    mem_available: float = 2e9,
    load1: float = 0.75,
    boot_time: float = 1_700_000_000.0,
    tx: float = 5_000.0,
    rx: float = 7_000.0,
    extra: int = 0,
) -> list[Series]:
    """One node_exporter scrape of a host: per-CPU counters (``busy`` seconds of user, ``idle`` of idle each).

    ``extra`` adds series the twin does not map (as node_exporter's other ~1,000).
    """
    who = {label: host if label == "hostname" else f"{host}:9100", "job": "node"}
    series: list[Series] = []
    for cpu in range(cpus):
        for mode, value in (("user", busy), ("idle", idle), ("iowait", 0.0), ("system", 0.0)):
            series.append(
                ({"__name__": "node_cpu_seconds_total", "cpu": str(cpu), "mode": mode, **who}, [(value, at_ms)])
            )
    for name, value in (
        ("node_memory_MemTotal_bytes", mem_total),
        ("node_memory_MemAvailable_bytes", mem_available),
        ("node_load1", load1),
        ("node_boot_time_seconds", boot_time),
    ):
        series.append(({"__name__": name, **who}, [(value, at_ms)]))
    for device, scale in (("eth0", 1.0), ("eth1", 2.0), ("lo", 1000.0)):
        series.append(
            ({"__name__": "node_network_transmit_bytes_total", "device": device, **who}, [(tx * scale, at_ms)])
        )
        series.append(
            ({"__name__": "node_network_receive_bytes_total", "device": device, **who}, [(rx * scale, at_ms)])
        )
    series.append(({"__name__": "node_uname_info", "sysname": "Linux", "machine": "x86_64", **who}, [(1.0, at_ms)]))
    for n in range(extra):
        series.append(({"__name__": "node_filefd_extra", "n": str(n), **who}, [(float(n), at_ms)]))
    return series
