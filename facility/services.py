"""Writes to the physical twin: placing hosts in rack units.

A placement is checked (``mount_check``, may refuse) and then stored
(``mount_store``, never refuses) under a lock on the rack, so two admins
placing hosts in the same rack at once cannot both take the same units.
"""

from __future__ import annotations

from django.db import transaction

from common.errors import Refused
from common.events import event_publish_on_commit, hosts_changed
from facility.models import RACK_HEIGHT_DEFAULT_U, Face, Mount, RackLocation
from facility.placement import Occupant, placement_check
from hosts.models import Host, Rack


class PlacementRefused(Refused):
    """A placement that cannot be: units taken (the occupant named) or outside the rack."""

    def __init__(self, detail: str, *, code: str = "placement_refused") -> None:
        super().__init__(code, detail, status=409 if code == "unit_occupied" else 400)


def rack_height_u(*, rack: Rack) -> int:
    """The rack's height in units: from its location, else the default (42)."""
    location = RackLocation.objects.filter(rack=rack).only("height_u").first()
    return location.height_u if location else RACK_HEIGHT_DEFAULT_U


def rack_occupants(*, rack: Rack, excluding: Host | None = None) -> list[Occupant]:
    """The hosts filling known units of ``rack``."""
    mounts = Mount.objects.filter(host__rack=rack, unit__isnull=False)
    if excluding is not None:
        mounts = mounts.exclude(host=excluding)
    return [Occupant(h, u, n) for h, u, n in mounts.values_list("host__hostname", "unit", "height_u")]


def mount_check(*, host: Host, rack: Rack, unit: int | None, height_u: int) -> None:
    """Refuse a placement of ``host`` in ``rack`` at ``unit`` that overlaps another host or leaves the rack."""
    if unit is None:
        return
    reason = placement_check(
        rack=rack.name,
        rack_height_u=rack_height_u(rack=rack),
        hostname=host.hostname,
        unit=unit,
        height_u=height_u,
        occupants=rack_occupants(rack=rack, excluding=host),
    )
    if reason is not None:
        code = "unit_occupied" if "overlaps" in reason else "unit_outside_rack"
        raise PlacementRefused(f"{host.hostname}: {reason}", code=code)


def mount_store(
    *,
    host: Host,
    rack: Rack,
    unit: int | None,
    height_u: int = 1,
    face: str = Face.FRONT,
    nameplate_watts: float | None = None,
) -> Mount:
    """Store a checked placement: the host's rack (locked against agents' reports, as an admin's is) and its units."""
    if host.rack_id != rack.pk or not host.placement_locked:
        host.rack = rack
        # An operator placed it: agents' reported racks no longer move it (hosts.services.host_facts_apply).
        host.placement_locked = True
        host.save(update_fields=["rack", "placement_locked"])
    mount, _ = Mount.objects.update_or_create(
        host=host, defaults={"unit": unit, "height_u": height_u, "face": face, "nameplate_watts": nameplate_watts}
    )
    return mount


def mount_place(
    *,
    host: Host,
    rack: Rack,
    unit: int | None,
    height_u: int = 1,
    face: str = Face.FRONT,
    nameplate_watts: float | None = None,
) -> Mount:
    """Place ``host`` in ``rack`` at ``unit`` (lowest unit), refusing an overlap with the occupant named.

    1. Lock the rack's row, so concurrent placements in it take turns.
    2. Check the units against the rack's height and its other hosts.
    3. Store the placement; tell readers after commit.
    """
    with transaction.atomic():
        Rack.objects.select_for_update().filter(pk=rack.pk).first()
        mount_check(host=host, rack=rack, unit=unit, height_u=height_u)
        mount = mount_store(
            host=host, rack=rack, unit=unit, height_u=height_u, face=face, nameplate_watts=nameplate_watts
        )
        event_publish_on_commit(hosts_changed(hostnames=[host.hostname]))
    return mount


def facility_save(*, obj: object) -> None:
    """Save an admin's edit of a site, room, row, rack location or feed; the floor may look different."""
    obj.save()  # type: ignore[attr-defined]
    event_publish_on_commit(hosts_changed(hostnames=None))


def facility_delete(*, objs: object) -> None:
    """Delete physical records (and what cascades from them)."""
    objs.delete()  # type: ignore[attr-defined]
    event_publish_on_commit(hosts_changed(hostnames=None))
