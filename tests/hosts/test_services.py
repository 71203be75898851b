"""hosts.services: one writer of host facts, with the placement rule, for agents and admins alike."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from common.events import EVENTS_GROUP, EventType
from hosts.models import Host, Rack
from hosts.services import HostFacts, host_admin_save, host_facts_apply, hosts_facts_record

pytestmark = pytest.mark.django_db


def _host(**fields) -> Host:
    return Host.objects.create(hostname="titan-01", **fields)


def test_an_agent_sets_version_platform_address_rack_and_position():
    host = _host()
    hosts_facts_record(
        facts={host: HostFacts(agent_version="2.0", platform="Linux", ip="10.0.0.9", rack="R1", position=(1, 2, 3))}
    )
    host.refresh_from_db()
    assert (host.agent_version, host.platform, host.ip, host.rack.name) == ("2.0", "Linux", "10.0.0.9", "R1")
    assert (host.position_x, host.position_y, host.position_z) == (1, 2, 3)


def test_a_placement_locked_host_keeps_its_rack_and_position_against_agents():
    rack = Rack.objects.create(name="R7")
    host = _host(rack=rack, position_x=7.0, placement_locked=True)
    hosts_facts_record(facts={host: HostFacts(rack="R1", position=(1, 1, 1), platform="Linux")})
    host.refresh_from_db()
    assert (host.rack, host.position_x, host.platform) == (rack, 7.0, "Linux")
    assert not Rack.objects.filter(name="R1").exists()


def test_an_agent_names_a_host_only_while_it_has_no_name():
    host = _host(display_name="Titan by the admin")
    assert not host_facts_apply(host=host, facts=HostFacts(display_name="titan"), racks={})
    assert host.display_name == "Titan by the admin"


def test_facts_equal_to_the_stored_ones_write_nothing_and_announce_nothing(django_capture_on_commit_callbacks):
    host = _host(agent_version="2.0", platform="Linux")
    with django_capture_on_commit_callbacks() as callbacks:
        changed = hosts_facts_record(facts={host: HostFacts(agent_version="2.0", platform="Linux")})
    assert changed == [] and callbacks == []


def test_an_admin_moving_a_host_locks_its_placement():
    host = _host()
    host.position_x = 4.0
    host_admin_save(host=host, changed_fields=["position_x"])
    host.refresh_from_db()
    assert host.placement_locked


def test_an_admin_may_move_a_host_and_unlock_it_in_the_same_edit():
    host = _host(placement_locked=True)
    host.position_x, host.placement_locked = 4.0, False
    host_admin_save(host=host, changed_fields=["position_x", "placement_locked"])
    host.refresh_from_db()
    assert not host.placement_locked


def test_an_admin_renaming_a_host_announces_both_names_after_commit(django_capture_on_commit_callbacks):
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(EVENTS_GROUP, channel)
    host = _host()
    host.hostname = "titan-99"
    with django_capture_on_commit_callbacks(execute=True):
        host_admin_save(host=host, changed_fields=["hostname"], old_hostname="titan-01")
    message = async_to_sync(layer.receive)(channel)
    assert message["events"] == [
        {"type": EventType.HOSTS_CHANGED, "audience": "readers", "payload": {"hostnames": ["titan-01", "titan-99"]}}
    ]
