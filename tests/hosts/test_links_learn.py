"""hosts.services.links_learn: links learned from the LLDP neighbours agents report, only to switches the twin holds."""

from __future__ import annotations

import pytest

from hosts.models import Host, Link
from hosts.topology import topology_import
from tests.conftest import sample_dict, seconds_ago
from tests.fabric.fixtures import as_file, hosts_create, leaf_spine

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("open_twin")]


def _report(post_batch, hostname: str, neighbours: dict[str, dict | None]) -> None:
    interfaces = []
    for name, neighbour in neighbours.items():
        interface = {"name": name, "rx_bytes": 1000, "tx_bytes": 1000}
        if neighbour is not None:
            interface["neighbor"] = neighbour
        interfaces.append(interface)
    response = post_batch([sample_dict(hostname, at=seconds_ago(2), interfaces=interfaces)])
    assert response.status_code == 202 and response.json()["accepted"] == 1, response.content


def _links_of(hostname: str) -> set[tuple[str, str | None, str | None]]:
    links = Link.objects.filter(target__hostname=hostname).select_related(
        "source", "source_interface", "target_interface"
    )
    return {
        (
            link.source.hostname,
            link.source_interface.name if link.source_interface else None,
            link.target_interface.name if link.target_interface else None,
        )
        for link in links
    }


def _fabric_without_host_links() -> None:
    document = leaf_spine()
    document["links"] = [link for link in document["links"] if not link["target"].startswith("h-")]
    topology_import(body=as_file(document))


def test_a_host_reporting_its_tor_by_lldp_is_linked_to_it_by_that_interface_and_port(post_batch):
    hosts_create(["new-01"])
    _fabric_without_host_links()
    _report(post_batch, "new-01", {"eth0": {"chassis": "Leaf-1", "port": "swp7"}, "eth1": {"chassis": "leaf-2"}})
    assert _links_of("new-01") == {("leaf-1", "swp7", "eth0"), ("leaf-2", None, "eth1")}


def test_a_learned_link_replaces_the_default_uplink_to_the_core(post_batch):
    hosts_create(["new-01"])
    _fabric_without_host_links()
    assert _links_of("new-01") == {("core-switch", None, None)}
    _report(post_batch, "new-01", {"eth0": {"chassis": "leaf-1", "port": "swp7"}})
    assert _links_of("new-01") == {("leaf-1", "swp7", "eth0")}


def test_an_unknown_neighbour_creates_no_switch_and_no_link(post_batch):
    hosts_create(["new-01"])
    _report(
        post_batch, "new-01", {"eth0": {"chassis": "rogue-switch", "port": "1"}, "eth1": {"chassis": "not a name!"}}
    )
    assert not Host.objects.filter(hostname="rogue-switch").exists()
    assert _links_of("new-01") == {("core-switch", None, None)}


def test_a_neighbour_that_is_a_host_with_an_agent_is_not_a_switch(post_batch):
    hosts_create(["new-01", "new-02"])
    _report(post_batch, "new-01", {"eth0": {"chassis": "new-02"}})
    assert _links_of("new-01") == {("core-switch", None, None)}


def test_a_link_the_topology_file_drew_is_left_as_the_file_says(post_batch):
    hosts_create()
    topology_import(body=as_file(leaf_spine()))
    before = _links_of("h-1a")
    _report(post_batch, "h-1a", {"eth3": {"chassis": "leaf-1", "port": "swp40"}})
    assert _links_of("h-1a") == before == {("leaf-1", "swp1", "eth0")}


def test_the_same_neighbours_reported_again_change_nothing(post_batch):
    hosts_create(["new-01"])
    _fabric_without_host_links()
    _report(post_batch, "new-01", {"eth0": {"chassis": "leaf-1", "port": "swp7"}})
    links = list(Link.objects.values_list("pk", "source_id", "target_id", "source_interface_id", "target_interface_id"))
    _report(post_batch, "new-01", {"eth0": {"chassis": "leaf-1", "port": "swp7"}})
    assert (
        list(Link.objects.values_list("pk", "source_id", "target_id", "source_interface_id", "target_interface_id"))
        == links
    )


def test_an_unknown_key_in_a_neighbour_refuses_the_sample_naming_it(post_batch):
    hosts_create(["new-01"])
    interfaces = [{"name": "eth0", "rx_bytes": 1, "tx_bytes": 1, "neighbor": {"chassis": "leaf-1", "vlan": 7}}]
    response = post_batch([sample_dict("new-01", interfaces=interfaces)])
    assert "vlan" in response.content.decode()
