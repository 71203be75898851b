"""Physical twin test data, made through the real models and services."""

from __future__ import annotations

from facility.models import PowerFeed, RackLocation, Room, Row, Site
from hosts.models import Host, Rack


def floor_rack(
    name: str, *, site: str = "S1", room: str = "H1", row: str = "A", order: int = 0, height_u: int = 42
) -> Rack:
    """A rack standing in ``site/room/row`` at ``order``."""
    site_obj, _ = Site.objects.get_or_create(name=site)
    room_obj, _ = Room.objects.get_or_create(site=site_obj, name=room)
    row_obj, _ = Row.objects.get_or_create(room=room_obj, name=row)
    rack, _ = Rack.objects.get_or_create(name=name)
    RackLocation.objects.update_or_create(rack=rack, defaults={"row": row_obj, "order": order, "height_u": height_u})
    return rack


def feeds(rack: Rack, *, a: float = 5000.0, b: float = 5000.0) -> None:
    """Feeds A and B of ``rack`` with these capacities in watts."""
    PowerFeed.objects.update_or_create(rack=rack, side="A", defaults={"capacity_watts": a})
    PowerFeed.objects.update_or_create(rack=rack, side="B", defaults={"capacity_watts": b})


def host(hostname: str) -> Host:
    return Host.objects.create(hostname=hostname)
