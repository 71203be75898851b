"""Reads of the physical twin: every rack's space and power state, a rack's power, where a server fits."""

from __future__ import annotations

from collections import defaultdict

from django.db.models import Count, F, FloatField, Q, Sum
from django.db.models.functions import Coalesce

from facility.models import RACK_HEIGHT_DEFAULT_U, Mount, PowerFeed, RackLocation, Room, Site
from facility.placement import Occupant
from facility.power import CapacityFit, RackPowerDoc, RackState, capacity_rank, rack_power_doc
from hosts.models import Host, Rack


def rack_states(*, site: str | None = None, room: str | None = None, rack: str | None = None) -> list[RackState]:
    """Each rack's state (its place, feeds, occupied units and draw), in four queries whatever the floor's size.

    With ``site`` or ``room``, only the racks standing there; without, every
    rack (one without a location has the default height and no site).
    """
    racks = Rack.objects.all()
    if site is not None:
        racks = racks.filter(location__row__room__site__name=site)
    if room is not None:
        racks = racks.filter(location__row__room__name=room)
    if rack is not None:
        racks = racks.filter(name=rack)
    rows = list(
        racks.order_by("name").values_list(
            "id", "name", "location__height_u", "location__row__name", "location__row__room__name",
            "location__row__room__site__name",
        )
    )  # fmt: skip
    if not rows:
        return []
    ids = [r[0] for r in rows]
    scoped = len(ids) < 500  # a filter by id list only when it is short; otherwise read all and pick
    feeds: dict[int, dict[str, float]] = defaultdict(dict)
    pdus: dict[int, dict[str, str]] = defaultdict(dict)
    feed_rows = PowerFeed.objects.filter(rack_id__in=ids) if scoped else PowerFeed.objects.all()
    for rack_id, side, pdu, watts, amps, volts in feed_rows.values_list(
        "rack_id", "side", "pdu", "capacity_watts", "amps", "volts"
    ):
        feeds[rack_id][side] = float(watts) if watts is not None else float(amps or 0) * float(volts or 0)
        pdus[rack_id][side] = pdu
    occupants: dict[int, list[Occupant]] = defaultdict(list)
    mounts = Mount.objects.filter(unit__isnull=False, host__rack_id__isnull=False)
    if scoped:
        mounts = mounts.filter(host__rack_id__in=ids)
    for rack_id, hostname, unit, height in mounts.values_list("host__rack_id", "host__hostname", "unit", "height_u"):
        occupants[rack_id].append(Occupant(hostname, unit, height))
    hosts = Host.objects.filter(rack_id__isnull=False)
    if scoped:
        hosts = hosts.filter(rack_id__in=ids)
    draw = {
        r["rack_id"]: r
        for r in hosts.values("rack_id").annotate(
            measured=Coalesce(Sum("latest__power_watts"), 0.0, output_field=FloatField()),
            nameplate=Coalesce(Sum("mount__nameplate_watts"), 0.0, output_field=FloatField()),
            planning=Coalesce(
                Sum(Coalesce(F("latest__power_watts"), F("mount__nameplate_watts"), output_field=FloatField())),
                0.0,
                output_field=FloatField(),
            ),
            hosts=Count("id"),
            measured_hosts=Count("id", filter=Q(latest__power_watts__isnull=False)),
        )
    }
    states = []
    for rack_id, name, height, row, room_name, site_name in rows:
        d = draw.get(rack_id, {})
        states.append(
            RackState(
                name=name,
                site=site_name or "",
                room=room_name or "",
                row=row or "",
                height_u=height or RACK_HEIGHT_DEFAULT_U,
                feeds=feeds.get(rack_id, {}),
                occupants=tuple(occupants.get(rack_id, ())),
                measured_watts=float(d.get("measured", 0.0)),
                nameplate_watts=float(d.get("nameplate", 0.0)),
                planning_watts=float(d.get("planning", 0.0)),
                hosts=int(d.get("hosts", 0)),
                hosts_measured=int(d.get("measured_hosts", 0)),
                feed_pdus=pdus.get(rack_id, {}),
            )
        )
    return states


def rack_power(*, name: str) -> RackPowerDoc | None:
    """A rack's power document (``GET /api/racks/{name}/power``), or None for an unknown rack."""
    states = rack_states(rack=name)
    return rack_power_doc(states[0]) if states else None


def racks_power() -> list[RackPowerDoc]:
    """Every rack's power document, by name."""
    return [rack_power_doc(state) for state in rack_states()]


def capacity_find(
    *, u: int, watts: float, site: str | None = None, room: str | None = None
) -> tuple[list[CapacityFit], int, dict[str, int]]:
    """Where a ``u``-unit server drawing ``watts`` fits: fitting racks best first, racks checked, refusals by kind.

    Only racks standing on a floor (with a location) are candidates: a rack
    known by name alone has no known height or place.
    """
    # A located rack always has a site.
    states = [s for s in rack_states(site=site, room=room) if s.site]
    fits, refused = capacity_rank(states, u=u, watts=watts)
    return fits, len(states), refused


def site_exists(*, name: str) -> bool:
    return Site.objects.filter(name=name).exists()


def room_exists(*, name: str, site: str | None = None) -> bool:
    rooms = Room.objects.filter(name=name)
    return (rooms.filter(site__name=site) if site is not None else rooms).exists()


def rack_sites() -> dict[str, str]:
    """Each located rack's name → the name of its site, in one query (a rack without a place is missing)."""
    return dict(RackLocation.objects.values_list("rack__name", "row__room__site__name"))
