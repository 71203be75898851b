"""Writes to the inventory: hosts, racks, links and placement."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.db import transaction

from hosts.models import Host, Link, Rack

CORE_SWITCH_DEFAULTS = {
    "display_name": "Core Switch",
    "agent_version": "virtual",
    "platform": "virtual-switch",
    "is_virtual": True,
    "position_x": 0.0,
    "position_y": 0.0,
    "position_z": 0.0,
    "placement_locked": True,
}


def core_switch_ensure(*, host_model: type[Host] = Host) -> Host:
    """Create the virtual core switch if it is missing.

    The first migration calls it with its historical model, which is why the
    model is a parameter.
    """
    core, _ = host_model.objects.get_or_create(hostname=settings.TWIN_CORE_HOSTNAME, defaults=CORE_SWITCH_DEFAULTS)
    return core


def racks_ensure(*, names: Iterable[str]) -> dict[str, Rack]:
    """Return the racks with these names, creating the missing ones.

    ``ignore_conflicts`` lets two batches name a new rack at once without an
    IntegrityError: the loser's insert is skipped and both read the same row.
    """
    wanted = set(names)
    if not wanted:
        return {}
    Rack.objects.bulk_create([Rack(name=n) for n in sorted(wanted)], ignore_conflicts=True)
    return {r.name: r for r in Rack.objects.filter(name__in=wanted)}


def hosts_lock_or_create(*, hostnames: Iterable[str]) -> dict[str, Host]:
    """Return these hosts, row-locked for the surrounding transaction, creating missing ones.

    1. Insert the hosts not seen before, skipping any a concurrent batch just created.
    2. Give each host created here an uplink to the core switch (see ``links_uplink_ensure``).
    3. Lock every row in hostname order. Concurrent batches for overlapping
       hosts then queue behind each other instead of deadlocking, and the
       latest values they compute from the stored ones cannot interleave.
    """
    wanted = sorted(set(hostnames))
    if not wanted:
        return {}
    known = set(Host.objects.filter(hostname__in=wanted).values_list("hostname", flat=True))
    missing = [h for h in wanted if h not in known]
    if missing:
        Host.objects.bulk_create([Host(hostname=h) for h in missing], ignore_conflicts=True)
    locked = {h.hostname: h for h in Host.objects.select_for_update().filter(hostname__in=wanted).order_by("hostname")}
    if missing:
        links_uplink_ensure(hosts=[locked[h] for h in missing])
    return locked


def links_uplink_ensure(*, hosts: list[Host]) -> None:
    """Link new hosts to the core switch.

    Only done when a host is first seen: once an admin rewires or deletes the
    uplink, agents never put it back.
    """
    core = Host.objects.filter(hostname=settings.TWIN_CORE_HOSTNAME).first()
    if core is None:
        return
    # A concurrent batch that created the same host links it too: the unique
    # (source, target) pair turns the second insert into a no-op.
    Link.objects.bulk_create([Link(source=core, target=h) for h in hosts if h.pk != core.pk], ignore_conflicts=True)


@transaction.atomic
def host_placement_set(*, host: Host, rack: Rack | None, position: tuple[float, float, float] | None) -> Host:
    """Place a host by hand. From then on the admin, not the agent, owns its placement."""
    host.rack = rack
    host.position_x, host.position_y, host.position_z = position or (None, None, None)
    host.placement_locked = True
    host.save(update_fields=["rack", "position_x", "position_y", "position_z", "placement_locked"])
    return host
