"""Placing hosts in rack units: one service for the admin and the import, overlaps refused with the occupant named."""

from __future__ import annotations

import pytest

from facility.models import Mount
from facility.services import PlacementRefused, mount_place
from tests.facility.factories import floor_rack, host

pytestmark = pytest.mark.django_db


def test_a_placed_host_fills_its_units_and_its_rack_is_locked_against_agents():
    rack = floor_rack("R1")
    h = host("web-01")
    mount_place(host=h, rack=rack, unit=10, height_u=2, nameplate_watts=450)
    h.refresh_from_db()
    assert (h.rack_id, h.placement_locked) == (rack.pk, True)
    mount = Mount.objects.get(host=h)
    assert (mount.unit, mount.height_u, mount.face, mount.nameplate_watts) == (10, 2, "front", 450)


def test_an_overlap_is_refused_naming_the_occupant_and_nothing_moves():
    rack = floor_rack("R1")
    mount_place(host=host("db-01"), rack=rack, unit=10, height_u=2)
    newcomer = host("web-02")
    with pytest.raises(PlacementRefused) as refused:
        mount_place(host=newcomer, rack=rack, unit=11, height_u=1)
    assert refused.value.code == "unit_occupied"
    assert "db-01" in refused.value.detail and "U10-U11" in refused.value.detail
    assert not Mount.objects.filter(host=newcomer).exists()
    newcomer.refresh_from_db()
    assert newcomer.rack_id is None


def test_a_rear_mounted_host_overlaps_a_front_one_in_the_same_units():
    rack = floor_rack("R1")
    mount_place(host=host("db-01"), rack=rack, unit=5)
    with pytest.raises(PlacementRefused, match="db-01"):
        mount_place(host=host("pdu-01"), rack=rack, unit=5, face="rear")


def test_units_beyond_the_racks_height_are_refused():
    rack = floor_rack("R1", height_u=24)
    with pytest.raises(PlacementRefused, match="24 units") as refused:
        mount_place(host=host("big-01"), rack=rack, unit=23, height_u=4)
    assert refused.value.code == "unit_outside_rack"


def test_a_host_moves_within_its_rack_without_overlapping_itself():
    rack = floor_rack("R1")
    h = host("web-01")
    mount_place(host=h, rack=rack, unit=10, height_u=2)
    mount_place(host=h, rack=rack, unit=11, height_u=2)
    assert Mount.objects.get(host=h).unit == 11


def test_adjacent_hosts_do_not_overlap():
    rack = floor_rack("R1")
    mount_place(host=host("a"), rack=rack, unit=1, height_u=2)
    mount_place(host=host("b"), rack=rack, unit=3, height_u=1)
    assert Mount.objects.filter(host__rack=rack).count() == 2
