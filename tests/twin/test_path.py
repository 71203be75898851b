"""GET /api/twin/path on a loaded leaf-spine fabric: the shortest paths over working switches, each hop's traffic."""

from __future__ import annotations

import pytest

from hosts.models import Host
from hosts.topology import topology_import
from tests.fabric.fixtures import as_file, hosts_create, leaf_spine

pytestmark = pytest.mark.django_db


@pytest.fixture
def fabric():
    hosts_create()
    topology_import(body=as_file(leaf_spine()))


def _path(client, **params):
    response = client.get("/api/twin/path", {k.rstrip("_"): v for k, v in params.items()})
    return response.status_code, response.json()


def _route(path: list[dict]) -> list[str]:
    return [path[0]["from"], *(hop["to"] for hop in path)]


@pytest.mark.usefixtures("open_twin")
def test_a_host_reaches_the_core_over_each_spine(client, fabric):
    status, body = _path(client, from_="h-1a")
    assert status == 200, body
    assert (body["from"], body["to"], body["reason"]) == ("h-1a", "core-switch", None)
    assert [_route(p) for p in body["paths"]] == [
        ["h-1a", "leaf-1", "spine-1", "core-switch"],
        ["h-1a", "leaf-1", "spine-2", "core-switch"],
    ]


@pytest.mark.usefixtures("open_twin")
def test_each_hop_names_its_link_with_the_twin_states_traffic(client, fabric):
    state = {link["id"]: link for link in client.get("/api/twin/state").json()["links"]}
    _, body = _path(client, from_="h-1a")
    for hop in body["paths"][0]:
        link = state[hop["link"]]
        assert {hop["from"], hop["to"]} == {link["source"], link["target"]}
        assert (hop["throughputGbps"], hop["utilization"]) == (link["throughputGbps"], link["utilization"])


@pytest.mark.usefixtures("open_twin")
def test_two_hosts_of_different_racks_meet_over_either_spine_never_through_a_host(client, fabric):
    _, body = _path(client, from_="h-1a", to="h-2b")
    assert [_route(p) for p in body["paths"]] == [
        ["h-1a", "leaf-1", "spine-1", "leaf-2", "h-2b"],
        ["h-1a", "leaf-1", "spine-2", "leaf-2", "h-2b"],
    ]


@pytest.mark.usefixtures("open_twin")
def test_a_failed_spine_is_left_out_of_the_paths(client, fabric):
    Host.objects.filter(hostname="spine-1").update(failed=True)
    _, body = _path(client, from_="h-1a")
    assert [_route(p) for p in body["paths"]] == [["h-1a", "leaf-1", "spine-2", "core-switch"]]


@pytest.mark.usefixtures("open_twin")
def test_no_path_is_an_empty_list_with_the_reason(client, fabric):
    Host.objects.filter(hostname="leaf-1").update(failed=True)
    status, body = _path(client, from_="h-1a")
    assert status == 200 and body["paths"] == [] and "h-1a" in body["reason"]
    _, body = _path(client, from_="leaf-1")
    assert body["paths"] == [] and body["reason"] == "leaf-1 has failed."


@pytest.mark.usefixtures("open_twin")
def test_an_unknown_node_is_a_400_naming_it(client, fabric):
    status, body = _path(client, from_="h-1a", to="ghost")
    assert status == 400 and "ghost" in body["detail"] and body["parameter"] == "to"
    status, body = _path(client, to="h-1a")
    assert status == 400 and body["parameter"] == "from"
    status, body = _path(client, from_="h-1a", to="h-1a")
    assert status == 400


def test_a_path_is_for_readers_only(client, fabric):
    assert client.get("/api/twin/path", {"from": "h-1a"}).status_code in (401, 403)


def test_the_path_and_its_document_are_in_the_openapi_schema(client):
    schema = client.get("/api/schema/", headers={"Accept": "application/json"}).json()
    assert "/api/twin/path" in schema["paths"]
    assert set(schema["components"]["schemas"]["PathDoc"]["properties"]) == {
        "generatedAt",
        "from",
        "to",
        "paths",
        "reason",
    }
