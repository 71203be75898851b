"""The admin: every inventory page works, and placing a host by hand locks its placement."""

from __future__ import annotations

import pytest
from django.urls import reverse

from hosts.models import Host, Link, Rack
from metrics.models import LatestMetrics
from tests.conftest import sample_dict

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("open_twin")]


@pytest.fixture
def fleet(post_batch):
    post_batch([sample_dict("titan-01"), sample_dict("titan-02", rack="R2")])


@pytest.mark.parametrize("model", ["hosts_rack", "hosts_host", "hosts_link", "metrics_latestmetrics", "jobs_job"])
def test_every_admin_list_opens_and_searches(admin_client, fleet, model):
    url = reverse(f"admin:{model}_changelist")
    assert admin_client.get(url).status_code == 200
    assert admin_client.get(url, {"q": "titan"}).status_code == 200


def test_the_host_page_opens_with_its_links(admin_client, fleet):
    host = Host.objects.get(hostname="core-switch")
    response = admin_client.get(reverse("admin:hosts_host_change", args=[host.pk]))
    assert response.status_code == 200
    assert b"titan-01" in response.content


def _host_form(host: Host, **changes) -> dict:
    form = {
        "hostname": host.hostname,
        "display_name": host.display_name,
        "ip": host.ip or "",
        "agent_version": host.agent_version,
        "platform": host.platform,
        "rack": host.rack_id or "",
        "position_x": host.position_x if host.position_x is not None else "",
        "position_y": host.position_y if host.position_y is not None else "",
        "position_z": host.position_z if host.position_z is not None else "",
        "links_out-TOTAL_FORMS": "0",
        "links_out-INITIAL_FORMS": "0",
    }
    form.update(changes)
    return form


def test_moving_a_host_in_the_admin_locks_its_placement_against_agents(admin_client, fleet, post_batch):
    host = Host.objects.get(hostname="titan-01")
    rack = Rack.objects.create(name="R7")
    response = admin_client.post(
        reverse("admin:hosts_host_change", args=[host.pk]), _host_form(host, rack=rack.pk, position_x=7.0)
    )
    assert response.status_code == 302, response.content
    host.refresh_from_db()
    assert host.placement_locked and host.rack == rack and host.position_x == 7.0
    post_batch([sample_dict("titan-01", rack="R1", position={"x": 1, "y": 1, "z": 1})])
    host.refresh_from_db()
    assert (host.rack, host.position_x) == (rack, 7.0)


def test_renaming_a_host_in_the_admin_leaves_placement_to_the_agent(admin_client, fleet):
    host = Host.objects.get(hostname="titan-01")
    admin_client.post(reverse("admin:hosts_host_change", args=[host.pk]), _host_form(host, display_name="Titan 01"))
    host.refresh_from_db()
    assert host.display_name == "Titan 01" and not host.placement_locked


def test_a_link_capacity_can_be_edited_but_not_made_zero(admin_client, fleet):
    link = Link.objects.get(target__hostname="titan-01")
    url = reverse("admin:hosts_link_change", args=[link.pk])
    form = {"source": link.source_id, "target": link.target_id, "capacity_gbps": "25"}
    assert admin_client.post(url, form).status_code == 302
    link.refresh_from_db()
    assert link.capacity_gbps == 25
    assert admin_client.post(url, {**form, "capacity_gbps": "0"}).status_code == 200
    link.refresh_from_db()
    assert link.capacity_gbps == 25


def test_latest_values_are_read_only_in_the_admin(admin_client, fleet):
    latest = LatestMetrics.objects.first()
    assert latest is not None
    assert admin_client.get(reverse("admin:metrics_latestmetrics_add")).status_code == 403
    response = admin_client.post(reverse("admin:metrics_latestmetrics_delete", args=[latest.pk]), {"post": "yes"})
    assert response.status_code == 403
    assert LatestMetrics.objects.filter(pk=latest.pk).exists()


# --- a fleet of thousands -------------------------------------------------------------------

FLEET_SIZE = 1500


@pytest.fixture
def big_fleet(db):
    """1,500 hosts, each with its uplink from the core switch: the switch has 1,500 links."""
    core = Host.objects.get(hostname="core-switch")
    rack = Rack.objects.create(name="R1")
    hosts = Host.objects.bulk_create([Host(hostname=f"h-{n:05d}", rack=rack) for n in range(FLEET_SIZE)])
    Link.objects.bulk_create([Link(source=core, target=h) for h in hosts])
    return core


def _form_field_names(html: bytes) -> set[str]:
    import re

    return set(re.findall(rb'name="([^"]+)"', html))


def test_the_core_switch_of_a_big_fleet_opens_and_saves_within_djangos_field_limit(
    admin_client, big_fleet, settings, django_assert_max_num_queries
):
    url = reverse("admin:hosts_host_change", args=[big_fleet.pk])
    with django_assert_max_num_queries(30):
        page = admin_client.get(url)
    assert page.status_code == 200
    names = _form_field_names(page.content)
    assert len(names) < 100 < settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
    assert b"links_out-0-target" not in page.content
    assert f"{FLEET_SIZE} from this host".encode() in page.content
    assert f"source__id__exact={big_fleet.pk}".encode() in page.content
    form = {
        "hostname": "core-switch",
        "display_name": "Core Switch (edited)",
        "is_virtual": "on",
        "approved": "on",
        "placement_locked": "on",
        "position_x": "0",
        "position_y": "0",
        "position_z": "0",
    }
    response = admin_client.post(url, form)
    assert response.status_code == 302, response.content[:2000]
    big_fleet.refresh_from_db()
    assert big_fleet.display_name == "Core Switch (edited)"
    assert Link.objects.filter(source=big_fleet).count() == FLEET_SIZE


BIG_FLEET_PAGES = [
    "admin:hosts_host_changelist",
    "admin:hosts_link_changelist",
    "admin:hosts_rack_changelist",
    "admin:hosts_host_add",
    "admin:hosts_link_add",
    "admin:hosts_agentcredential_changelist",
    "admin:metrics_latestmetrics_changelist",
]


def test_every_admin_page_of_a_big_fleet_opens_with_few_queries(admin_client, big_fleet, django_assert_max_num_queries):
    for url in BIG_FLEET_PAGES:
        with django_assert_max_num_queries(30):
            response = admin_client.get(reverse(url))
        assert response.status_code == 200, url
        assert len(response.content) < 1_000_000, url


def test_a_hosts_page_in_a_big_fleet_does_not_list_every_host_as_a_choice(admin_client, big_fleet):
    host = Host.objects.get(hostname="h-00042")
    response = admin_client.get(reverse("admin:hosts_host_change", args=[host.pk]))
    assert response.status_code == 200
    assert response.content.count(b"<option") < 50
    assert len(response.content) < 200_000


def test_the_links_of_a_big_switch_are_listed_filtered_and_paginated(admin_client, big_fleet):
    response = admin_client.get(reverse("admin:hosts_link_changelist"), {"source__id__exact": big_fleet.pk})
    assert response.status_code == 200
    assert f"{FLEET_SIZE} links".encode() in response.content
    response = admin_client.get(reverse("admin:hosts_link_changelist"), {"source__id__exact": big_fleet.pk, "p": 3})
    assert response.status_code == 200


def test_reporting_rights_are_chosen_by_searching_hosts(admin_client, big_fleet):
    response = admin_client.get(
        "/admin/autocomplete/",
        {"app_label": "hosts", "model_name": "host", "field_name": "reports_for", "term": "h-0004"},
    )
    assert response.status_code == 200
    assert {r["text"] for r in response.json()["results"]} >= {"h-00040", "h-00049"}


def test_deleting_the_core_switch_of_a_big_fleet_asks_without_listing_thousands_of_forms(admin_client, big_fleet):
    response = admin_client.get(reverse("admin:hosts_host_delete", args=[big_fleet.pk]))
    assert response.status_code == 200
    assert len(_form_field_names(response.content)) < 20


def test_the_host_pages_link_heading_reads_links_from_this_host(admin_client, fleet):
    host = Host.objects.get(hostname="core-switch")
    response = admin_client.get(reverse("admin:hosts_host_change", args=[host.pk]))
    assert b"Links from this host" in response.content
    assert b"this hosts" not in response.content.lower()
