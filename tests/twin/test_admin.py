"""The admin's host page: the last day as a chart, the status changes and the recent samples."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from hosts.models import Host
from tests.conftest import ingest_at, sample_dict
from twin.services import status_transitions_record

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("open_twin")]


def test_the_host_page_shows_its_history_as_a_chart_with_its_status_changes(admin_client):
    then = timezone.now() - timedelta(minutes=10)
    ingest_at([sample_dict(at=then - timedelta(minutes=m), cpu_load=m / 2) for m in range(0, 120, 5)], received_at=then)
    status_transitions_record(now=then + timedelta(seconds=1))
    status_transitions_record(now=then + timedelta(seconds=40))
    host = Host.objects.get(hostname="titan-01")
    page = admin_client.get(reverse("admin:hosts_host_change", args=[host.pk])).content.decode()
    assert page.count('viewBox="0 0 720 150"') == 2 and 'd="M' in page  # load and traffic, each with a line
    assert "CPU %" in page and "sent B/s" in page
    assert "online → stale" in page and "the clock alone" in page
    assert "<th>stamped</th>" in page and page.count("<td>63.2</td>") == 10


def test_a_host_without_samples_says_so_instead_of_drawing(admin_client):
    host = Host.objects.create(hostname="spare-01")
    page = admin_client.get(reverse("admin:hosts_host_change", args=[host.pk])).content.decode()
    assert "No samples in this period." in page and "None recorded yet." in page


def test_the_add_page_still_opens(admin_client):
    assert admin_client.get(reverse("admin:hosts_host_add")).status_code == 200


def test_a_fresh_hosts_chart_starts_at_its_first_sample_instead_of_crowding_the_right_edge(admin_client):
    now = timezone.now()
    ingest_at([sample_dict(at=now - timedelta(minutes=m), cpu_load=10 + m) for m in range(0, 40, 2)], received_at=now)
    host = Host.objects.get(hostname="titan-01")
    page = admin_client.get(reverse("admin:hosts_host_change", args=[host.pk])).content.decode()
    path = re.search(r'd="M([0-9.]+),', page)
    assert path is not None
    # The line begins near the left axis (64 px of 720), not in the last hour's sliver of a day.
    assert float(path.group(1)) < 64 + 0.1 * (720 - 64 - 12)
