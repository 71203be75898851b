"""Seed a fleet straight into the database: hosts in racks, latest values, uplinks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db import transaction

from hosts.models import Host, Link, Rack
from hosts.services import core_switch_ensure
from metrics.models import LatestMetrics


@transaction.atomic
def fleet_seed(*, hosts: int, prefix: str = "node", per_rack: int = 40) -> list[str]:
    """Create ``hosts`` hosts (with latest values and an uplink each); return their hostnames."""
    core = core_switch_ensure()
    racks = Rack.objects.bulk_create(
        [Rack(name=f"{prefix}-R{i:04d}") for i in range((hosts + per_rack - 1) // per_rack)], ignore_conflicts=True
    )
    racks = list(Rack.objects.filter(name__startswith=f"{prefix}-R").order_by("name"))
    names = [f"{prefix}-{i:05d}" for i in range(hosts)]
    Host.objects.bulk_create(
        [
            Host(
                hostname=name,
                display_name=name.title(),
                ip=f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}",
                agent_version="0.1.0",
                platform="Linux-x86_64",
                rack=racks[i // per_rack],
                position_x=float(i % 100),
                position_y=float(i // per_rack % 10),
                position_z=float(i // 1000),
            )
            for i, name in enumerate(names)
        ],
        batch_size=2000,
        ignore_conflicts=True,
    )
    created = list(Host.objects.filter(hostname__in=names).order_by("hostname"))
    now = datetime.now(UTC)
    LatestMetrics.objects.bulk_create(
        [
            LatestMetrics(
                host=h,
                last_seen=now,
                sample_time=now,
                cpu_load=10.0 + i % 80,
                memory_used_percent=30.0 + i % 60,
                load_average=1.0 + i % 7,
                uptime_seconds=86400 + i,
                net_bytes_tx=2_000_000_000 + i,
                net_bytes_rx=1_000_000_000 + i,
                prev_sample_time=now - timedelta(seconds=10),
                prev_net_bytes_tx=1_000_000_000 + i,
                prev_net_bytes_rx=500_000_000 + i,
                net_throughput_gbps=1.2,
            )
            for i, h in enumerate(created)
        ],
        batch_size=2000,
        ignore_conflicts=True,
    )
    Link.objects.bulk_create([Link(source=core, target=h) for h in created], batch_size=2000, ignore_conflicts=True)
    return names
