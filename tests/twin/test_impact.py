"""The impact endpoints and the reachability keys of the twin-state document, on a loaded leaf-spine fabric."""

from __future__ import annotations

import pytest

from hosts.models import Host
from hosts.topology import topology_import
from tests.fabric.fixtures import RACKS, as_file, hosts_create, leaf_spine
from twin.snapshot import snapshot_build

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("open_twin")]


@pytest.fixture
def fabric():
    hosts_create()
    topology_import(body=as_file(leaf_spine()))


def test_a_tor_marked_failed_makes_its_rack_unreachable_in_the_document(fabric):
    Host.objects.filter(hostname="leaf-1").update(failed=True)
    hosts = {h["hostname"]: h for h in snapshot_build()["hosts"]}
    assert [hosts[h]["reachable"] for h in RACKS["leaf-1"]] == [False, False]
    assert hosts["h-2a"]["reachable"] is True and hosts["h-2a"]["redundancy"] == 1
    assert hosts["leaf-2"]["redundancy"] == 2


def test_the_impact_of_a_tor_lists_its_rack_as_lost(client, fabric):
    response = client.get("/api/fabric/impact", {"node": "leaf-1"})
    assert response.status_code == 200, response.content
    assert response.json()["lost"] == RACKS["leaf-1"]


def test_the_impact_of_a_spine_posted_loses_redundancy_only(client, fabric):
    response = client.post("/api/twin/impact", {"fail": ["spine-1"]}, content_type="application/json")
    body = response.json()
    assert (body["lost"], body["degradedSwitches"]) == ([], sorted(RACKS))


def test_an_unknown_node_is_a_400_naming_it(client, fabric):
    response = client.get("/api/fabric/impact", {"node": "ghost"})
    assert response.status_code == 400 and "ghost" in response.json()["detail"]
    assert client.get("/api/fabric/impact").status_code == 400
