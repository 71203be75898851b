"""Reads of the inventory other apps rely on."""

from __future__ import annotations

import pytest

from hosts.models import Host
from hosts.selectors import host_id_by_hostname

pytestmark = pytest.mark.django_db


def test_a_host_is_found_by_its_hostname_and_an_unknown_name_finds_none():
    host = Host.objects.create(hostname="titan-01")
    assert host_id_by_hostname(hostname="titan-01") == host.pk
    assert host_id_by_hostname(hostname="titan-02") is None
