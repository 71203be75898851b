"""One incident per failed switch: the hosts it cuts off hang under its alert, one notice, resolved together."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
from django.test import Client

from alerts.delivery import alertmanager_alert, notices_deliver
from alerts.models import Alert, Notification, Rule
from hosts.topology import topology_import
from tests.conftest import ingest_at, sample_dict

pytestmark = pytest.mark.django_db

BEHIND = [f"web-{i:02d}" for i in range(20)]


@pytest.fixture
def leaf_with_twenty(clock):
    """core-switch → leaf-9 → 20 hosts, and core-switch → leaf-8 → other-01; everyone reports at the start."""
    Rule.objects.exclude(name__in=["HostOffline", "SwitchDown"]).update(enabled=False)
    ingest_at([sample_dict(h, at=clock.now) for h in [*BEHIND, "other-01"]], received_at=clock.now)
    switches = [{"name": "core-switch", "role": "core"}, {"name": "leaf-8", "role": "leaf"}]
    switches.append({"name": "leaf-9", "role": "leaf"})
    links = [{"source": "core-switch", "target": leaf} for leaf in ("leaf-8", "leaf-9")]
    links += [{"source": "leaf-9", "target": h} for h in BEHIND]
    links.append({"source": "leaf-8", "target": "other-01"})
    topology_import(body=orjson.dumps({"switches": switches, "links": links}))
    assert clock.evaluate() == []


def _leaf_fails(clock, settings) -> None:
    """Nothing behind leaf-9 reports past the offline threshold; other-01 keeps reporting."""
    clock.now += timedelta(seconds=settings.TWIN_OFFLINE_AFTER_SECONDS + 1)
    ingest_at([sample_dict("other-01", at=clock.now)], received_at=clock.now)
    clock.evaluate()


def test_a_failed_leaf_with_twenty_hosts_is_one_notice_naming_them(clock, settings, hook, leaf_with_twenty):
    _leaf_fails(clock, settings)

    switch = Alert.objects.get(rule__name="SwitchDown")
    assert (switch.host.hostname, switch.state, switch.cause) == ("leaf-9", "firing", None)
    hosts = Alert.objects.filter(rule__name="HostOffline").order_by("host__hostname")
    assert [a.host.hostname for a in hosts] == BEHIND
    assert {(a.state, a.cause_id) for a in hosts} == {("firing", switch.pk)}
    assert set(Notification.objects.values_list("state", flat=True)) == {"pending", "inhibited"}

    assert notices_deliver(now=clock.now).sent == 1
    (notice,) = hook.bodies()
    assert notice["type"] == "alert.firing"
    assert (notice["data"]["rule"], notice["data"]["hostname"]) == ("SwitchDown", "leaf-9")
    assert notice["data"]["affects"] == BEHIND


def test_the_api_shows_the_hosts_as_caused_by_the_switch(clock, settings, hook, leaf_with_twenty, admin_user):
    _leaf_fails(clock, settings)
    client = Client()
    client.force_login(admin_user)
    alerts = client.get("/api/alerts").json()["alerts"]
    by_host = {a["hostname"]: a for a in alerts}
    switch = by_host.pop("leaf-9")
    assert switch["affects"] == BEHIND and switch["causedBy"] is None
    assert sorted(by_host) == BEHIND
    assert {(a["rule"], a["causedBy"]["rule"], a["causedBy"]["hostname"]) for a in by_host.values()} == {
        ("HostOffline", "SwitchDown", "leaf-9")
    }
    assert {a["causedBy"]["id"] for a in by_host.values()} == {switch["id"]}


def test_the_switch_coming_back_resolves_the_incident_with_one_resolve(clock, settings, hook, leaf_with_twenty):
    _leaf_fails(clock, settings)
    notices_deliver(now=clock.now)
    ingest_at([sample_dict(h, at=clock.now) for h in BEHIND], received_at=clock.now)
    clock.evaluate(1)

    assert not Alert.objects.filter(state__in=["pending", "firing"]).exists()
    assert notices_deliver(now=clock.now).sent == 1
    _firing, resolved = hook.bodies()
    assert (resolved["type"], resolved["data"]["hostname"]) == ("alert.resolved", "leaf-9")
    assert resolved["data"]["affects"] == BEHIND


def test_a_host_still_offline_long_after_its_switch_came_back_is_its_own_notice(
    clock, settings, hook, leaf_with_twenty
):
    _leaf_fails(clock, settings)
    notices_deliver(now=clock.now)
    ingest_at([sample_dict(h, at=clock.now) for h in BEHIND[1:]], received_at=clock.now)
    clock.evaluate(1)
    assert notices_deliver(now=clock.now).sent == 1  # the switch's resolve; web-00 still held: it may come back
    clock.now += timedelta(seconds=settings.TWIN_OFFLINE_AFTER_SECONDS + 1)
    ingest_at([sample_dict(h, at=clock.now) for h in [*BEHIND[1:], "other-01"]], received_at=clock.now)
    clock.evaluate()

    assert notices_deliver(now=clock.now).sent == 1
    own = hook.bodies()[-1]
    assert (own["type"], own["data"]["hostname"], own["data"]["rule"]) == ("alert.firing", "web-00", "HostOffline")
    assert own["data"]["causedBy"]["hostname"] == "leaf-9"


def test_alertmanager_gets_the_cause_with_the_hosts_it_cut_off_as_an_annotation(clock, settings, leaf_with_twenty):
    _leaf_fails(clock, settings)
    posted = alertmanager_alert(Alert.objects.get(rule__name="SwitchDown"), resolved=False, now=clock.now)
    assert posted["labels"]["alertname"] == "SwitchDown" and posted["labels"]["hostname"] == "leaf-9"
    assert posted["annotations"]["affected_hosts"] == f"20 host(s) cut off: {', '.join(BEHIND)}"
    assert (
        "affected_hosts"
        not in alertmanager_alert(Alert.objects.get(host__hostname="web-00"), resolved=False, now=clock.now)[
            "annotations"
        ]
    )


def test_the_admin_lists_the_alerts_that_hang_under_a_cause(clock, settings, leaf_with_twenty, admin_client):
    _leaf_fails(clock, settings)
    page = admin_client.get("/admin/alerts/alert/", {"cause__isempty": "0"})
    assert page.status_code == 200
    text = page.content.decode()
    assert "web-00" in text and "web-19" in text and "20 alerts" in text
