"""Rack rules: a rack's power against its feeds gives one alert and one notice per rack, never one per host in it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction

from alerts.delivery import alertmanager_alert, notices_deliver
from alerts.models import Alert, AlertTransition, MaintenanceWindow, Notification, Rule, Silence
from alerts.racks import rack_values
from facility.selectors import rack_power
from hosts.models import Rack
from tests.conftest import ingest_at, sample_dict
from tests.facility.factories import feeds, floor_rack

pytestmark = pytest.mark.django_db

HOSTS = 3


def _rack(*, a: float = 5000.0, b: float = 5000.0, name: str = "R1", site: str = "S1") -> Rack:
    rack = floor_rack(name, site=site)
    feeds(rack, a=a, b=b)
    return rack


def _draw(clock, watts_each: float, *, rack: str = "R1") -> None:
    """The rack's hosts report ``watts_each`` each, now."""
    samples = [
        sample_dict(f"{rack.lower()}-h{i}", at=clock.now, power_watts=watts_each, rack=rack) for i in range(HOSTS)
    ]
    ingest_at([{k: v for k, v in s.items() if k != "position"} for s in samples], received_at=clock.now)


def _only(*names: str) -> None:
    Rule.objects.exclude(name__in=names).update(enabled=False)


def test_a_rack_past_90_percent_fires_one_alert_and_one_notice_naming_the_rack_and_resolves_below_85(clock, hook):
    _only("RackPowerHigh")
    _rack()  # 10 kW with both feeds
    _draw(clock, 3100.0)  # 9.3 kW: 93 %
    assert [(c.rule, c.rack, c.hostname, c.to_state) for c in clock.evaluate()] == [
        ("RackPowerHigh", "R1", "", "pending")
    ]
    assert [c.to_state for c in clock.evaluate(300)] == ["firing"]  # the shipped rule's five minutes
    alert = Alert.objects.get()
    assert (alert.rack.name, alert.host, alert.values["value"]) == ("R1", None, 93.0)
    assert alert.labels == {"alertname": "RackPowerHigh", "rack": "R1", "site": "S1", "severity": "warning"}
    notices_deliver(now=clock.now)
    (firing,) = hook.bodies()
    assert firing["type"] == "alert.firing"
    assert (firing["data"]["rack"], firing["data"]["hostname"]) == ("R1", None)
    assert firing["data"]["annotations"]["summary"].startswith("Rack R1 draws 93 %")

    _draw(clock, 2900.0)  # 87 %: under the threshold, above the clear threshold
    assert clock.evaluate(10) == []
    _draw(clock, 2800.0)  # 84 %
    assert [c.to_state for c in clock.evaluate(10)] == ["resolved"]
    notices_deliver(now=clock.now)
    assert [b["type"] for b in hook.bodies()] == ["alert.firing", "alert.resolved"]
    assert Alert.objects.count() == 1
    assert list(AlertTransition.objects.order_by("id").values_list("to_state", flat=True)) == [
        "pending",
        "firing",
        "resolved",
    ]


def test_an_ab_margin_going_negative_fires_a_critical_alert_at_once(clock):
    _only("RackABMarginNegative")
    _rack(a=5000.0, b=3000.0)
    _draw(clock, 900.0)  # 2.7 kW: feed B alone keeps 300 W
    assert clock.evaluate() == []
    clock.now += timedelta(seconds=1)
    _draw(clock, 1100.0)  # 3.3 kW: if A fails, B is 300 W short
    assert [c.to_state for c in clock.evaluate()] == ["pending", "firing"]
    alert = Alert.objects.get()
    assert alert.labels["severity"] == "critical"
    assert alert.values == {
        "value": -300.0,
        "threshold": 0.0,
        "measuredWatts": 3300.0,
        "capacityWatts": 8000.0,
        "failedFeed": "A",
    }


def test_a_rack_with_one_feed_has_no_ab_margin_and_a_rack_without_feeds_no_percent():
    power = rack_power(name="R1")
    assert power is None
    _rack()
    Rack.objects.get(name="R1").power_feeds.filter(side="B").delete()
    one_feed = rack_power(name="R1")
    assert one_feed is not None
    assert rack_values(one_feed) == {"rack_power_percent": 0.0, "rack_ab_margin_watts": None}
    Rack.objects.get(name="R1").power_feeds.all().delete()
    no_feed = rack_power(name="R1")
    assert no_feed is not None
    assert rack_values(no_feed) == {"rack_power_percent": None, "rack_ab_margin_watts": None}


def test_a_silence_on_the_rack_records_its_alert_but_sends_nothing(clock, hook):
    _only("RackABMarginNegative")
    _rack(name="R1")
    _rack(name="R2")
    Silence.objects.create(
        matchers=[{"name": "rack", "value": "R1"}],
        starts_at=clock.now - timedelta(minutes=1),
        ends_at=clock.now + timedelta(hours=1),
        comment="feed B of R1 is being replaced",
    )
    _draw(clock, 2000.0, rack="R1")
    _draw(clock, 2000.0, rack="R2")
    clock.evaluate()
    notices_deliver(now=clock.now)
    assert [b["data"]["rack"] for b in hook.bodies()] == ["R2"]
    assert Notification.objects.get(transition__alert__rack__name="R1").state == "suppressed"


def test_a_maintenance_window_of_the_rack_suppresses_its_power_alert(clock, hook):
    _only("RackABMarginNegative")
    rack = _rack()
    window = MaintenanceWindow.objects.create(
        name="rewiring", starts_at=clock.now - timedelta(minutes=5), ends_at=clock.now + timedelta(hours=1)
    )
    window.racks.add(rack)
    _draw(clock, 2000.0)
    clock.evaluate()
    notices_deliver(now=clock.now)
    assert hook.received == [] and Notification.objects.get().state == "suppressed"


def test_a_rule_scoped_to_named_racks_watches_only_those(clock, only_rules):
    _rack(name="R1")
    _rack(name="R2")
    only_rules(
        {"name": "Hot", "field": "rack_power_percent", "operator": ">", "threshold": 50.0, "scope": "racks"}
        | {"racks": ["R2"]}
    )
    _draw(clock, 2000.0, rack="R1")
    _draw(clock, 2000.0, rack="R2")
    clock.evaluate()
    assert list(Alert.objects.values_list("rack__name", "state")) == [("R2", "firing")]


def test_disabling_a_rack_rule_resolves_its_open_alert(clock):
    _only("RackABMarginNegative")
    _rack()
    _draw(clock, 2000.0)
    clock.evaluate()
    Rule.objects.filter(name="RackABMarginNegative").update(enabled=False)
    assert [(c.rack, c.to_state) for c in clock.evaluate(1)] == [("R1", "resolved")]
    resolve = AlertTransition.objects.get(to_state="resolved")
    assert resolve.values == {"reason": "the rule is disabled or no longer covers this rack"}


def test_the_live_event_names_the_rack_and_no_host(clock, monkeypatch):
    published: list = []
    monkeypatch.setattr("alerts.evaluation.events_publish_on_commit", published.extend)
    _only("RackABMarginNegative")
    _rack()
    _draw(clock, 2000.0)
    clock.evaluate()
    assert [(e["type"], e["payload"]["rack"], e["payload"]["hostname"], e["payload"]["to"]) for e in published] == [
        ("alert.updated", "R1", None, "pending"),
        ("alert.updated", "R1", None, "firing"),
    ]


def test_alertmanager_gets_the_rack_and_site_labels_and_no_hostname(clock):
    _only("RackABMarginNegative")
    _rack()
    _draw(clock, 2000.0)
    clock.evaluate()
    posted = alertmanager_alert(Alert.objects.get(), resolved=False, now=clock.now)
    assert posted["labels"] == {
        "alertname": "RackABMarginNegative",
        "rack": "R1",
        "site": "S1",
        "severity": "critical",
    }


def test_an_alert_names_a_host_or_a_rack_never_both_nor_neither(clock):
    _only("RackABMarginNegative")
    _rack()
    _draw(clock, 2000.0)
    clock.evaluate()
    alert = Alert.objects.get()
    for host, rack in ((None, None), (alert.rack.hosts.first(), alert.rack)):
        with pytest.raises(IntegrityError), transaction.atomic():
            Alert.objects.create(
                rule=alert.rule, host=host, rack=rack, state="resolved", starts_at=clock.now, labels={}
            )


def test_the_admin_lists_a_racks_alert_found_by_the_racks_name(clock, admin_client):
    _only("RackABMarginNegative")
    _rack(name="R1")
    _draw(clock, 2000.0)
    clock.evaluate()
    page = admin_client.get("/admin/alerts/alert/", {"q": "R1"}).content.decode()
    assert "RackABMarginNegative" in page and 'field-rack nowrap">R1<' in page and "1 alert" in page
    alert = Alert.objects.get()
    assert admin_client.get(f"/admin/alerts/alert/{alert.pk}/change/").status_code == 200


def test_a_racks_webhook_links_the_dashboard_not_a_host(clock, hook, settings):
    settings.TWIN_ALERTS_DASHBOARD_URL = "https://twin.example/"
    _only("RackABMarginNegative")
    _rack()
    _draw(clock, 2000.0)
    clock.evaluate()
    notices_deliver(now=clock.now)
    (firing,) = hook.bodies()
    assert firing["data"]["generatorURL"] == "https://twin.example/"
    assert "hostname" not in firing["data"]["labels"]
