"""The admin's host list: what an operator scans first (status, CPU) and filters that scale to big fleets."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from hosts.models import Host, Rack
from tests.conftest import ingest_at, sample_dict

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("open_twin")]

CHANGELIST = "admin:hosts_host_changelist"


def rows_of(page: str) -> dict[str, str]:
    """Each result row's HTML by the hostname it links to."""
    rows = re.findall(r"<tr>(.*?)</tr>", page, flags=re.S)
    found: dict[str, str] = {}
    for row in rows:
        name = re.search(r'<th class="field-hostname"><a [^>]*>([^<]+)</a>', row)
        if name:
            found[name.group(1)] = row
    return found


@pytest.fixture
def three_states():
    """One host online at 12.5 % CPU, one offline since an hour, one never heard from."""
    now = timezone.now()
    ingest_at([sample_dict(hostname="fresh-01", at=now, cpu_load=12.5)], received_at=now)
    hour_ago = now - timedelta(hours=1)
    ingest_at([sample_dict(hostname="gone-01", at=hour_ago, cpu_load=99.0)], received_at=hour_ago)
    Host.objects.create(hostname="silent-01")


def test_the_host_list_shows_each_hosts_status_and_cpu(admin_client, three_states):
    rows = rows_of(admin_client.get(reverse(CHANGELIST)).content.decode())
    assert "online" in rows["fresh-01"] and '<td class="field-cpu">12.5</td>' in rows["fresh-01"]
    assert "offline" in rows["gone-01"] and '<td class="field-cpu">99.0</td>' in rows["gone-01"]
    assert "unknown" in rows["silent-01"] and '<td class="field-cpu">-</td>' in rows["silent-01"]


@pytest.mark.parametrize(
    ("status", "listed"), [("online", {"fresh-01"}), ("offline", {"gone-01"}), ("unknown", {"silent-01"})]
)
def test_the_status_filter_lists_only_hosts_in_that_status(admin_client, three_states, status, listed):
    page = admin_client.get(reverse(CHANGELIST), {"status": status}).content.decode()
    assert set(rows_of(page)) == listed


def test_an_unknown_status_in_the_filter_is_refused_not_a_500(admin_client, three_states):
    response = admin_client.get(reverse(CHANGELIST), {"status": "sideways"})
    # Django's answer to a bad lookup: the unfiltered list with ?e=1, never an error page.
    assert response.status_code == 302 and "e=1" in response["Location"]


def test_the_list_sorts_by_cpu(admin_client, three_states):
    page = admin_client.get(reverse(CHANGELIST), {"o": "-3"}).content.decode()  # third column: CPU
    order = list(rows_of(page))
    assert order.index("gone-01") < order.index("fresh-01")


def test_the_rack_filter_is_a_search_box_not_a_link_per_rack(admin_client):
    racks = [Rack.objects.create(name=f"rack-{n:03}") for n in range(60)]
    Host.objects.create(hostname="placed-01", rack=racks[7])
    Host.objects.create(hostname="elsewhere-01", rack=racks[8])
    page = admin_client.get(reverse(CHANGELIST)).content.decode()
    assert page.count("rack__id__exact=") < 5  # not one link per rack
    assert 'id="rack-filter-id_rack"' in page or "rack-filter" in page
    filtered = admin_client.get(reverse(CHANGELIST), {"rack__id__exact": racks[7].pk}).content.decode()
    assert set(rows_of(filtered)) == {"placed-01"}


def test_a_rack_filter_that_is_not_an_id_is_refused_not_a_500(admin_client):
    response = admin_client.get(reverse(CHANGELIST), {"rack__id__exact": "x"})
    assert response.status_code == 302 and "e=1" in response["Location"]
