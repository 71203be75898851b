"""hosts.topology: a fabric loaded from a file, whole or not at all, and the same file twice changes nothing."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from hosts.models import FabricRole, Host, Interface, Link
from hosts.topology import TopologyRefused, topology_import
from tests.fabric.fixtures import HOSTS, RACKS, SPINES, as_file, hosts_create, leaf_spine

pytestmark = pytest.mark.django_db


def _links() -> set[str]:
    return {str(link) for link in Link.objects.select_related("source", "target")}


def _inventory() -> list[tuple]:
    """Every host, interface and link row as stored, ids and creation times included."""
    return [
        *Host.objects.values_list("pk", "hostname", "role", "display_name", "created_at"),
        *Interface.objects.values_list("pk", "host_id", "name", "created_at"),
        *Link.objects.values_list(
            "pk", "source_id", "target_id", "capacity_gbps", "source_interface_id", "target_interface_id", "created_at"
        ),
    ]


def test_a_leaf_spine_file_loads_switches_links_and_interfaces():
    hosts_create()
    result = topology_import(body=as_file(leaf_spine()))
    assert (result.switches_created, result.links_created) == (4, 2 + 4 + 4)
    assert Host.objects.get(hostname="spine-1").role == FabricRole.SPINE
    assert Host.objects.get(hostname="spine-1").is_virtual
    assert Host.objects.get(hostname="leaf-2").role == FabricRole.LEAF
    assert "spine-2::leaf-1" in _links() and "leaf-1::h-1a" in _links()
    link = Link.objects.get(source__hostname="spine-2", target__hostname="leaf-1")
    assert (link.source_interface.name, link.target_interface.name, link.capacity_gbps) == ("swp1", "uplink2", 100)


def test_a_host_the_fabric_links_to_its_tor_loses_its_default_uplink_to_the_core():
    hosts_create()
    assert "core-switch::h-1a" in _links()
    result = topology_import(body=as_file(leaf_spine()))
    assert not any(link.startswith("core-switch::h-") for link in _links())
    assert sorted(result.uplinks_removed) == sorted(f"core-switch::{h}" for h in HOSTS)


def test_a_new_host_still_gets_its_uplink_to_the_core():
    topology_import(body=as_file({"switches": [{"name": "spine-1", "role": "spine"}], "links": []}))
    hosts_create(["newcomer"])
    assert "core-switch::newcomer" in _links()


def test_importing_the_same_file_again_changes_nothing():
    hosts_create()
    topology_import(body=as_file(leaf_spine()))
    before = _inventory()
    again = topology_import(body=as_file(leaf_spine()))
    assert not again.changed
    assert _inventory() == before


def test_a_switch_may_be_placed_on_the_floor_and_moved_by_a_later_file():
    hosts_create()
    document = leaf_spine()
    document["switches"][1]["position"] = {"x": 1.5, "y": 2.5, "z": 0.5}
    topology_import(body=as_file(document))
    spine = Host.objects.get(hostname="spine-1")
    assert (spine.position_x, spine.position_y, spine.position_z) == (1.5, 2.5, 0.5)
    assert Host.objects.get(hostname="spine-2").position_x is None
    assert not topology_import(body=as_file(document)).changed
    document["switches"][1]["position"]["z"] = 4.0
    assert topology_import(body=as_file(document)).switches_updated == 1
    assert Host.objects.get(hostname="spine-1").position_z == 4.0


def test_a_changed_capacity_updates_the_link_in_place():
    hosts_create()
    topology_import(body=as_file(leaf_spine()))
    document = leaf_spine()
    document["links"][0]["capacityGbps"] = 800
    link_id = Link.objects.get(source__hostname="core-switch", target__hostname="spine-1").pk
    assert topology_import(body=as_file(document)).links_updated == 1
    assert Link.objects.get(pk=link_id).capacity_gbps == 800


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda d: d["links"].append({"source": "leaf-1", "target": "ghost"}), "unknown node ghost"),
        (lambda d: d["links"].append({"source": "spine-1", "target": "spine-1"}), "linked to itself"),
        (lambda d: d["links"].append({"source": "leaf-1", "target": "leaf-2"}), "a loop"),
        (lambda d: d["links"].append({"source": "h-1a", "target": "leaf-2"}), "a loop"),
        (lambda d: d["links"].append({"source": "leaf-1", "target": "spine-1"}), "duplicate of links[2]"),
        (lambda d: d["links"].append({"source": "spine-1", "target": "leaf-1", "capacityGbps": -1}), "capacityGbps"),
        (lambda d: d["switches"].append({"name": "spine-3", "role": "router"}), "is not one of core, spine, leaf"),
        (lambda d: d["switches"].append({"name": "h-1a", "role": "leaf"}), "a host with an agent of its own"),
        (lambda d: d["switches"].append({"name": "spine-1", "role": "spine"}), "switch named twice"),
    ],
)
def test_a_bad_row_refuses_the_whole_file_naming_the_row(change, named):
    hosts_create()
    before = _inventory()
    document = leaf_spine()
    change(document)
    section = "switches" if len(document["switches"]) > 5 else "links"
    index = len(document[section]) - 1
    with pytest.raises(TopologyRefused) as refused:
        topology_import(body=as_file(document))
    assert any(e.startswith(f"{section}[{index}]") and named in e for e in refused.value.errors), refused.value.errors
    assert _inventory() == before


def test_a_file_that_is_not_a_topology_is_refused():
    with pytest.raises(TopologyRefused, match="not JSON"):
        topology_import(body=b"{")
    with pytest.raises(TopologyRefused, match="not a topology"):
        topology_import(body=b'{"racks": []}')


def test_the_command_loads_a_file_and_refuses_a_bad_one_storing_nothing(tmp_path, capsys):
    hosts_create()
    good = tmp_path / "fabric.json"
    good.write_bytes(as_file(leaf_spine()))
    call_command("topology_import", str(good))
    assert "Links: 10 created" in capsys.readouterr().out
    call_command("topology_import", str(good))
    assert "Nothing to change" in capsys.readouterr().out
    bad = leaf_spine()
    bad["switches"].append({"name": "spine-9", "role": "spine"})
    bad["links"].append({"source": "spine-9", "target": "nowhere"})
    path = tmp_path / "bad.json"
    path.write_bytes(as_file(bad))
    with pytest.raises(CommandError, match="nothing stored"):
        call_command("topology_import", str(path))
    assert "links[10] (spine-9::nowhere): unknown node nowhere" in capsys.readouterr().err
    assert not Host.objects.filter(hostname="spine-9").exists()
    assert set(RACKS) | set(SPINES) <= set(Host.objects.values_list("hostname", flat=True))
