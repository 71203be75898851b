"""hosts: the plain-SQL reads behind every batch answer what the ORM queries they stand for answer (both databases).

The pairs: ``agent_identity_for_key`` against ``AgentCredential.objects.select_related("host")``;
``hostnames_virtual`` and ``_hostnames_existing`` against ``Host.objects.filter(hostname__in=...)``;
``_hosts_lock`` against ``Host.objects.filter(hostname__in=...).order_by("hostname")``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import transaction

from hosts.models import AgentCredential, Host, Rack
from hosts.selectors import agent_identity_for_key, hostnames_virtual
from hosts.services import _hostnames_existing, _hosts_lock

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet() -> list[Host]:
    rack = Rack.objects.create(name="R1")
    hosts = [
        Host.objects.create(hostname="titan-01", ip="10.0.0.1", rack=rack, position_x=1.0, platform="Linux"),
        Host.objects.create(hostname="titan-02", approved=False, display_name="Two", placement_locked=True),
        Host.objects.create(hostname="spine-01", is_virtual=True),
    ]
    AgentCredential.objects.create(host=hosts[0], key_id="k-live")
    AgentCredential.objects.create(host=hosts[1], key_id="k-revoked", revoked_at=datetime(2026, 1, 1, tzinfo=UTC))
    AgentCredential.objects.create(host=hosts[2], key_id="k-virtual")
    return hosts


def test_an_agents_identity_is_what_the_orm_reads_of_its_credential(fleet):
    """``agent_identity_for_key(key_id)`` against ``AgentCredential.objects.select_related("host").filter(key_id=)``."""
    for key_id in ("k-live", "k-revoked", "k-virtual", "k-unknown"):
        identity = agent_identity_for_key(key_id=key_id)
        credential = AgentCredential.objects.select_related("host").filter(key_id=key_id).first()
        if credential is None:
            assert identity is None
            continue
        assert identity is not None
        host = credential.host
        assert (identity.host_id, identity.hostname, identity.key_id) == (host.pk, host.hostname, key_id)
        expected = (credential.revoked_at is not None, host.approved, host.is_virtual)
        assert (identity.revoked, identity.approved, identity.virtual) == expected


def test_the_virtual_and_existing_hostnames_are_what_the_orm_filters(fleet):
    """``hostnames_virtual`` and ``_hostnames_existing`` against ``Host.objects.filter(hostname__in=...)``."""
    names = ["titan-01", "spine-01", "titan-09"]
    virtual = set(Host.objects.filter(is_virtual=True, hostname__in=names).values_list("hostname", flat=True))
    assert hostnames_virtual(hostnames=names) == virtual == {"spine-01"}
    assert _hostnames_existing(names) == set(Host.objects.filter(hostname__in=names).values_list("hostname", flat=True))
    assert hostnames_virtual(hostnames=[]) == set()


def test_locked_hosts_are_the_instances_the_orm_loads(fleet):
    """``_hosts_lock(hostnames)`` against ``Host.objects.filter(hostname__in=...).order_by("hostname")``."""
    names = ["titan-02", "spine-01", "titan-01", "titan-09"]
    with transaction.atomic():
        locked = _hosts_lock(names)
    loaded = {h.hostname: h for h in Host.objects.filter(hostname__in=names).order_by("hostname")}
    assert list(locked) == list(loaded)
    fields = [f.attname for f in Host._meta.concrete_fields]
    for hostname, host in locked.items():
        assert [getattr(host, f) for f in fields] == [getattr(loaded[hostname], f) for f in fields]
        assert not host._state.adding
