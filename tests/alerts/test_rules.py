"""Alert rules: the shipped defaults, and one check that refuses what could not be evaluated, naming the field."""

from __future__ import annotations

import math

import pytest
from django.urls import reverse

from alerts.models import Rule
from alerts.rules import RuleInvalid, RuleSpec, rule_check, rule_save
from hosts.models import Rack

pytestmark = pytest.mark.django_db


def test_the_installation_ships_the_default_rules_enabled():
    rules = {r.name: r for r in Rule.objects.all()}
    assert {"HostOffline", "HighCpu", "MemoryNearlyFull", "LinkUtilizationHigh", "AgentSilent"} <= set(rules)
    offline = rules["HostOffline"]
    assert (offline.kind, offline.status, offline.scope, offline.severity) == ("status", "offline", "all", "critical")
    assert rules["HighCpu"].field == "cpu_load" and rules["HighCpu"].clear_threshold < rules["HighCpu"].threshold
    assert all(r.enabled for r in rules.values())


def _refusal(**spec) -> RuleInvalid:
    with pytest.raises(RuleInvalid) as refused:
        rule_check(RuleSpec(**{"name": "T", **spec}))
    return refused.value


def test_an_unknown_metric_field_is_refused_naming_the_field():
    refusal = _refusal(field="cpu_lod", operator=">", threshold=1.0)
    assert refusal.field == "field" and "cpu_lod" in refusal.detail and "cpu_load" in refusal.detail


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_a_threshold_that_is_not_finite_is_refused(value):
    assert _refusal(field="cpu_load", operator=">", threshold=value).field == "threshold"


def test_a_clear_threshold_on_the_wrong_side_is_refused():
    rising = _refusal(field="cpu_load", operator=">", threshold=90.0, clear_threshold=95.0)
    assert rising.field == "clear_threshold" and "at or below" in rising.detail
    falling = _refusal(field="memory_used_percent", operator="<", threshold=10.0, clear_threshold=5.0)
    assert falling.field == "clear_threshold" and "at or above" in falling.detail


def test_a_status_rule_needs_a_known_status_and_no_threshold():
    assert _refusal(kind="status", status="down").field == "status"
    assert _refusal(kind="status", status="offline", threshold=3.0).field == "threshold"


def test_an_absent_rule_needs_its_seconds():
    assert _refusal(kind="absent").field == "threshold"


def test_the_twins_own_labels_and_unknown_racks_are_refused():
    assert _refusal(kind="status", status="offline", labels={"hostname": "x"}).field == "labels"
    assert _refusal(kind="status", status="offline", scope="racks", racks=["nowhere"]).field == "racks"
    assert _refusal(kind="status", status="offline", racks=["R1"]).field == "racks"


def test_a_duplicate_name_is_refused():
    assert _refusal(name="HostOffline", kind="status", status="offline").field == "name"


def test_a_valid_rule_is_stored_with_its_racks():
    Rack.objects.create(name="R7")
    rule = rule_save(
        RuleSpec(name="HotR7", field="cpu_load", operator=">=", threshold=50.0, scope="racks", racks=["R7"])
    )
    assert list(rule.racks.values_list("name", flat=True)) == ["R7"]


def test_the_admin_refuses_a_bad_rule_on_the_field_with_the_same_words(admin_client):
    form = {
        "name": "Bad",
        "enabled": "on",
        "kind": "metric",
        "field": "cpu_load",
        "operator": ">",
        "threshold": "90",
        "clear_threshold": "99",
        "for_seconds": "0",
        "severity": "warning",
        "labels": "{}",
        "annotations": "{}",
        "scope": "all",
    }
    page = admin_client.post(reverse("admin:alerts_rule_add"), form).content.decode()
    assert "clear_threshold 99.0 is on the wrong side" in page
    assert not Rule.objects.filter(name="Bad").exists()
    form["clear_threshold"] = "85"
    assert admin_client.post(reverse("admin:alerts_rule_add"), form).status_code == 302
    assert Rule.objects.get(name="Bad").clear_threshold == 85.0


def test_the_installation_ships_the_rack_power_rules():
    rules = {r.name: r for r in Rule.objects.filter(name__in=["RackPowerHigh", "RackABMarginNegative"])}
    high, margin = rules["RackPowerHigh"], rules["RackABMarginNegative"]
    assert (high.field, high.operator, high.threshold, high.clear_threshold) == ("rack_power_percent", ">", 90.0, 85.0)
    assert (high.for_seconds, high.severity, high.scope) == (300.0, "warning", "all")
    assert (margin.field, margin.operator, margin.threshold, margin.severity) == (
        "rack_ab_margin_watts",
        "<",
        0.0,
        "critical",
    )


@pytest.mark.parametrize("scope", ["hosts", "virtual"])
def test_a_rack_subject_is_refused_with_a_host_scope_naming_the_scope(scope):
    extra = {"hosts": ["web-01"]} if scope == "hosts" else {}
    refusal = _refusal(field="rack_power_percent", operator=">", threshold=90.0, scope=scope, **extra)
    assert refusal.field == "scope" and "once per rack" in refusal.detail and scope in refusal.detail


def test_a_rack_rule_may_not_set_the_site_label_a_host_rule_may():
    refusal = _refusal(field="rack_ab_margin_watts", operator="<", threshold=0.0, labels={"site": "x"})
    assert refusal.field == "labels" and "site" in refusal.detail
    rule_check(RuleSpec(name="T", field="cpu_load", operator=">", threshold=1.0, labels={"site": "x"}))


def test_a_rack_rule_over_named_racks_is_stored_and_a_rack_subject_is_a_metric_rules_only():
    assert _refusal(kind="status", status="offline", field="rack_power_percent").field == "field"
    Rack.objects.create(name="R7")
    rule = rule_save(
        RuleSpec(name="T", field="rack_power_percent", operator=">", threshold=80.0, scope="racks", racks=["R7"])
    )
    assert list(rule.racks.values_list("name", flat=True)) == ["R7"]


def test_the_admin_refuses_a_rack_field_with_a_host_scope_on_the_scope(admin_client):
    form = {
        "name": "RackHot",
        "enabled": "on",
        "kind": "metric",
        "field": "rack_power_percent",
        "operator": ">",
        "threshold": "80",
        "for_seconds": "0",
        "severity": "warning",
        "labels": "{}",
        "annotations": "{}",
        "scope": "virtual",
    }
    page = admin_client.post(reverse("admin:alerts_rule_add"), form).content.decode()
    assert "evaluated once per rack" in page and not Rule.objects.filter(name="RackHot").exists()
    form["scope"] = "all"
    assert admin_client.post(reverse("admin:alerts_rule_add"), form).status_code == 302
