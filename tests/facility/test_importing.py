"""``inventory_import``: a floor from a file, idempotent, all or nothing, every bad row named."""

from __future__ import annotations

import copy
from io import StringIO
from pathlib import Path
from typing import Any

import orjson
import pytest
from django.core.management import CommandError, call_command

from facility.importing import ImportRefused, floor_import
from facility.models import Mount, PowerFeed, RackLocation, Room, Row, Site
from facility.services import mount_place
from hosts.models import Host, Link, Rack
from tests.facility.factories import floor_rack, host

pytestmark = pytest.mark.django_db

FLOOR: dict[str, Any] = {
    "sites": [{"name": "AMS1", "description": "Amsterdam"}],
    "rooms": [{"site": "AMS1", "name": "H1"}],
    "rows": [
        {"site": "AMS1", "room": "H1", "name": "A", "order": 0},
        {"site": "AMS1", "room": "H1", "name": "B", "order": 1},
    ],
    "racks": [
        {"name": "A01", "site": "AMS1", "room": "H1", "row": "A", "order": 0},
        {"name": "A02", "site": "AMS1", "room": "H1", "row": "A", "order": 1, "height_u": 48},
        {"name": "B01", "site": "AMS1", "room": "H1", "row": "B", "order": 0},
    ],
    "feeds": [
        {"rack": "A01", "side": "A", "pdu": "pdu-a01-a", "watts": 5000},
        {"rack": "A01", "side": "B", "pdu": "pdu-a01-b", "amps": 16, "volts": 230},
    ],
    "units": [
        {"hostname": "web-01", "rack": "A01", "unit": 1, "height_u": 2, "nameplate_watts": 500},
        {"hostname": "web-02", "rack": "A01", "unit": 3, "nameplate_watts": 350},
        {"hostname": "db-01", "rack": "A02", "unit": 10, "height_u": 4, "face": "rear"},
    ],
}


def load(floor: dict[str, Any]):
    return floor_import(raw=orjson.dumps(floor))


def counts() -> tuple[int, ...]:
    models = (Site, Room, Row, Rack, RackLocation, PowerFeed, Host, Mount, Link)
    return tuple(m.objects.count() for m in models)


def test_a_floor_loads_with_its_racks_feeds_hosts_and_units():
    result = load(FLOOR)
    assert result.created["racks"] == 3 and result.created["hosts"] == 3 and result.created["units"] == 3
    assert RackLocation.objects.get(rack__name="A02").height_u == 48
    assert PowerFeed.objects.get(rack__name="A01", side="B").capacity == 16 * 230
    db = Host.objects.get(hostname="db-01")
    assert (db.rack.name, db.placement_locked, db.mount.unit, db.mount.height_u, db.mount.face) == (
        "A02",
        True,
        10,
        4,
        "rear",
    )
    # New hosts are created as on first contact: with their uplink to the core switch.
    assert Link.objects.filter(target=db).exists()


def test_importing_the_same_file_again_changes_nothing():
    load(FLOOR)
    before = counts()
    again = load(FLOOR)
    assert not again.changed, again.summary()
    assert counts() == before


def test_a_changed_row_updates_only_that_row():
    load(FLOOR)
    changed = copy.deepcopy(FLOOR)
    changed["units"][1]["unit"] = 5
    result = load(changed)
    assert result.updated["units"] == 1 and sum(result.created.values()) == 0
    assert Mount.objects.get(host__hostname="web-02").unit == 5


def test_an_unknown_rack_refuses_the_whole_file_naming_the_row():
    bad = copy.deepcopy(FLOOR)
    bad["units"].append({"hostname": "web-03", "rack": "Z99", "unit": 1})
    with pytest.raises(ImportRefused) as refused:
        load(bad)
    assert refused.value.errors == ["units[3] (web-03): rack Z99 is not in the file or the twin"]
    assert counts() == (0, 0, 0, 0, 0, 0, Host.objects.count(), 0, 0)
    assert not Rack.objects.exists()


def test_an_overlap_in_the_file_is_refused_naming_the_occupant():
    bad = copy.deepcopy(FLOOR)
    bad["units"].append({"hostname": "web-03", "rack": "A01", "unit": 2})
    with pytest.raises(ImportRefused) as refused:
        load(bad)
    assert "units[3] (web-03): U2 of rack A01 overlaps web-01 at U1-U2." in refused.value.errors
    assert not Site.objects.exists()


def test_an_overlap_with_a_stored_host_is_refused_naming_it():
    rack = floor_rack("A01")
    mount_place(host=host("legacy-01"), rack=rack, unit=3)
    with pytest.raises(ImportRefused, match=r"units\[1\] \(web-02\): U3 of rack A01 overlaps legacy-01 at U3"):
        load(FLOOR)
    assert not Host.objects.filter(hostname="web-01").exists()


def test_a_bad_row_shape_is_named_with_its_field():
    bad = copy.deepcopy(FLOOR)
    bad["racks"][1]["height_u"] = 0
    bad["feeds"].append({"rack": "A02", "side": "C", "watts": 1})
    with pytest.raises(ImportRefused) as refused:
        load(bad)
    assert refused.value.errors[0].startswith("racks[1] (A02): Expected `int` >= 1 - at `$.height_u`")
    assert refused.value.errors[1] == "feeds[2] (A02 C): Invalid enum value 'C' - at `$.side`"


def test_a_feed_without_capacity_and_a_repeated_unit_are_refused():
    bad = copy.deepcopy(FLOOR)
    bad["feeds"].append({"rack": "A02", "side": "A", "amps": 16})
    bad["units"].append(dict(FLOOR["units"][0]))
    with pytest.raises(ImportRefused) as refused:
        load(bad)
    assert refused.value.errors == [
        "feeds[2] (A02 A): give its capacity as watts, or as amps and volts",
        "units[3] (web-01): repeats units[0]",
    ]


def test_the_command_reports_what_it_changed_and_refuses_a_bad_file(tmp_path: Path):
    good = tmp_path / "floor.json"
    good.write_bytes(orjson.dumps(FLOOR))
    out = StringIO()
    call_command("inventory_import", str(good), stdout=out)
    assert out.getvalue().startswith("Imported: sites: 1 created")
    out = StringIO()
    call_command("inventory_import", str(good), stdout=out)
    assert out.getvalue().startswith("Nothing to change")
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"sites": [{"name": "X"}], "racks": [{"name": "R"}]}')
    with pytest.raises(CommandError, match=r"racks\[0\] \(R\): Object missing required field `site`"):
        call_command("inventory_import", str(bad))
    assert not Site.objects.filter(name="X").exists()
