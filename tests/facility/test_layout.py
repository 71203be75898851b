"""The floor laid out from rows and rack units when no position is given; given positions win."""

from __future__ import annotations

import pytest

from facility.layout import RACK_WIDTH_M, ROW_PITCH_M, UNIT_M
from facility.services import mount_place
from hosts.models import Host
from tests.facility.factories import floor_rack, host
from twin.snapshot import snapshot_build

pytestmark = pytest.mark.django_db


def positions() -> dict[str, dict]:
    return {doc["hostname"]: doc["position"] for doc in snapshot_build()["hosts"]}


def test_hosts_without_a_position_are_drawn_at_their_rack_and_unit():
    first, second = floor_rack("R1", order=0), floor_rack("R2", order=1)
    behind = floor_rack("R3", row="B", order=0)
    from facility.models import Row

    Row.objects.filter(name="B").update(order=1)
    mount_place(host=host("low"), rack=first, unit=1, height_u=2)
    mount_place(host=host("high"), rack=second, unit=40)
    mount_place(host=host("back"), rack=behind, unit=1)
    laid = positions()
    assert laid["low"]["y"] == pytest.approx(UNIT_M)  # the middle of U1-U2
    assert laid["high"]["x"] - laid["low"]["x"] == pytest.approx(RACK_WIDTH_M)
    assert laid["high"]["y"] == pytest.approx(39.5 * UNIT_M)
    assert laid["back"]["z"] - laid["low"]["z"] == pytest.approx(ROW_PITCH_M)
    assert laid["back"]["x"] == laid["low"]["x"]


def test_an_agent_or_admin_position_wins_over_the_layout():
    rack = floor_rack("R1")
    h = host("placed")
    Host.objects.filter(pk=h.pk).update(position_x=1.2, position_y=0.4, position_z=-0.8)
    mount_place(host=h, rack=rack, unit=3)
    assert positions()["placed"] == {"x": 1.2, "y": 0.4, "z": -0.8}


def test_a_fleet_without_a_floor_is_drawn_as_before():
    host("plain")
    assert positions()["plain"] == {"x": 0.0, "y": 0.0, "z": 0.0}
