"""A small leaf-spine fabric with known answers: a core, two spines, one ToR per rack, two hosts per ToR."""

from __future__ import annotations

from typing import Any

import orjson
from django.db import transaction

from hosts.services import hosts_lock_or_create

SPINES = ["spine-1", "spine-2"]
RACKS = {"leaf-1": ["h-1a", "h-1b"], "leaf-2": ["h-2a", "h-2b"]}
HOSTS = [h for hosts in RACKS.values() for h in hosts]


def leaf_spine(*, dual_homed: str | None = None) -> dict[str, Any]:
    """The topology file of the fabric; ``dual_homed`` names a host also linked to the other rack's ToR."""
    switches = [{"name": "core-switch", "role": "core"}]
    switches += [{"name": s, "role": "spine", "displayName": s.title()} for s in SPINES]
    switches += [{"name": leaf, "role": "leaf"} for leaf in RACKS]
    links: list[dict[str, Any]] = [{"source": "core-switch", "target": s, "capacityGbps": 400} for s in SPINES]
    links += [
        {
            "source": s,
            "target": leaf,
            "sourceInterface": f"swp{i}",
            "targetInterface": f"uplink{j}",
            "capacityGbps": 100,
        }
        for i, leaf in enumerate(RACKS, start=1)
        for j, s in enumerate(SPINES, start=1)
    ]
    links += [
        {"source": leaf, "target": h, "sourceInterface": f"swp{i}", "targetInterface": "eth0"}
        for leaf, hosts in RACKS.items()
        for i, h in enumerate(hosts, start=1)
    ]
    if dual_homed:
        other = next(leaf for leaf, hosts in RACKS.items() if dual_homed not in hosts)
        links.append({"source": other, "target": dual_homed, "sourceInterface": "swp9", "targetInterface": "eth1"})
    return {"switches": switches, "links": links}


def hosts_create(hostnames: list[str] = HOSTS) -> None:
    """The hosts as agents' first contact makes them: each with its default uplink to the core."""
    with transaction.atomic():
        hosts_lock_or_create(hostnames=hostnames)


def as_file(document: dict[str, Any]) -> bytes:
    return orjson.dumps(document)
