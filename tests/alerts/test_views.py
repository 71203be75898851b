"""The alerts API: what fires now in the contract's shape, the history by host, rule and time, rules CRUD."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from rest_framework.authtoken.models import Token

from alerts.models import Rule
from common.formats import iso_utc
from tests.conftest import ingest_at, iso, sample_dict
from tests.facility.factories import feeds, floor_rack

pytestmark = pytest.mark.django_db

CPU = {"name": "Cpu", "field": "cpu_load", "operator": ">", "threshold": 90.0, "clear_threshold": 80.0}


def _client(django_user_model, *codenames: str) -> Client:
    user = django_user_model.objects.create_user(f"u{len(codenames)}", password="x")
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="alerts", codename__in=codenames))
    return Client(headers={"Authorization": f"Token {Token.objects.create(user=user).key}"})


@pytest.fixture
def editor(django_user_model) -> Client:
    return _client(django_user_model, "view_rule", "add_rule", "change_rule", "delete_rule")


@pytest.fixture
def reader(django_user_model) -> Client:
    return _client(django_user_model)


def _fire_cpu(clock, only_rules, *hostnames: str) -> None:
    only_rules(CPU)
    ingest_at([sample_dict(h, at=clock.now, cpu_load=95.0) for h in hostnames], received_at=clock.now)
    clock.evaluate()


def test_the_alerts_that_fire_now_are_listed_in_the_contracts_shape(reader, clock, only_rules):
    _fire_cpu(clock, only_rules, "web-01")
    body = reader.get("/api/alerts").json()
    assert list(body) == ["alerts"]
    (alert,) = body["alerts"]
    assert {k: alert[k] for k in ("rule", "hostname", "state", "startsAt")} == {
        "rule": "Cpu",
        "hostname": "web-01",
        "state": "firing",
        "startsAt": iso_utc(clock.now),
    }
    assert alert["values"] == {"value": 95.0, "threshold": 90.0} and alert["endsAt"] is None
    assert alert["labels"]["alertname"] == "Cpu" and alert["rack"] == "R1"


def test_anonymous_readers_are_refused_unless_the_twin_is_public(client, settings):
    assert client.get("/api/alerts").status_code in (401, 403)
    settings.TWIN_PUBLIC_READ = True
    assert client.get("/api/alerts").json() == {"alerts": []}


def test_the_history_filters_by_host_rule_and_time(reader, clock, only_rules):
    _fire_cpu(clock, only_rules, "web-01", "web-02")
    started = clock.now
    ingest_at([sample_dict("web-01", at=clock.now + timedelta(seconds=1), cpu_load=5.0)], received_at=clock.now)
    clock.evaluate(10)
    history = reader.get("/api/alerts/history", {"host": "web-01"}).json()["alerts"]
    assert [(a["hostname"], a["state"]) for a in history] == [("web-01", "resolved")]
    assert history[0]["endsAt"] is not None
    assert len(reader.get("/api/alerts/history", {"rule": "Cpu"}).json()["alerts"]) == 2
    assert reader.get("/api/alerts/history", {"rule": "Nope"}).json() == {"alerts": []}
    later = iso(started + timedelta(seconds=15))
    # web-01 had resolved before 'later'; web-02 still fires.
    assert [a["hostname"] for a in reader.get("/api/alerts/history", {"since": later}).json()["alerts"]] == ["web-02"]
    before = iso(started - timedelta(seconds=5))
    assert reader.get("/api/alerts/history", {"until": before}).json() == {"alerts": []}
    assert [a["hostname"] for a in reader.get("/api/alerts").json()["alerts"]] == ["web-02"]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [({"since": "yesterday"}, "since"), ({"until": "2026-01-01T00:00:00"}, "until"), ({"limit": "0"}, "limit")],
)
def test_a_bad_history_parameter_is_a_400_naming_it(reader, query, parameter):
    response = reader.get("/api/alerts/history", query)
    assert response.status_code == 400 and response.json()["parameter"] == parameter


def _post(client: Client, path: str, document, method: str = "post"):
    return getattr(client, method)(path, data=orjson.dumps(document), content_type="application/json")


def test_an_editor_creates_reads_changes_and_deletes_a_rule(editor):
    created = _post(editor, "/api/alerts/rules", {**CPU, "for_seconds": 30, "labels": {"team": "ops"}})
    assert created.status_code == 201, created.content
    rule = created.json()
    assert rule["name"] == "Cpu" and rule["labels"] == {"team": "ops"} and rule["for_seconds"] == 30.0
    path = f"/api/alerts/rules/{rule['id']}"
    assert editor.get(path).json() == rule
    assert "Cpu" in [r["name"] for r in editor.get("/api/alerts/rules").json()["rules"]]
    patched = _post(editor, path, {"threshold": 95.0}, "patch")
    assert patched.status_code == 200 and patched.json()["threshold"] == 95.0 and patched.json()["for_seconds"] == 30
    replaced = _post(editor, path, {"name": "Cpu", "kind": "status", "status": "stale"}, "put")
    assert replaced.json()["kind"] == "status" and replaced.json()["field"] == ""
    assert editor.delete(path).status_code == 204
    assert editor.get(path).status_code == 404


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"field": "cpu_lod"}, "field"),
        ({"clear_threshold": 95.0}, "clear_threshold"),
        ({"threshold": 1e999}, "threshold"),
        ({"name": "HostOffline"}, "name"),
    ],
)
def test_a_bad_rule_is_a_400_naming_the_field_and_stores_nothing(editor, document, field):
    before = Rule.objects.count()
    response = _post(editor, "/api/alerts/rules", {**CPU, **document})
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "invalid_rule" and response.json()["field"] == field
    assert Rule.objects.count() == before


def test_a_body_of_the_wrong_shape_is_a_400(editor):
    response = _post(editor, "/api/alerts/rules", {**CPU, "operator": "~"})
    assert response.status_code == 400 and response.json()["error"] == "invalid_rule"
    assert "operator" in response.json()["detail"]
    bad_nan = editor.post("/api/alerts/rules", data=b'{"name": "N", "threshold": NaN}', content_type="application/json")
    assert bad_nan.status_code == 400


def test_rules_need_the_model_permissions(reader, django_user_model):
    assert reader.get("/api/alerts/rules").status_code == 403
    viewer = _client(django_user_model, "view_rule")
    assert viewer.get("/api/alerts/rules").status_code == 200
    assert _post(viewer, "/api/alerts/rules", CPU).status_code == 403
    assert not Rule.objects.filter(name="Cpu").exists()


def test_the_openapi_schema_names_the_alerts_operations(reader):
    schema = reader.get("/api/schema/", {"format": "json"}).json()
    assert {"/api/alerts", "/api/alerts/history", "/api/alerts/rules", "/api/alerts/rules/{rule_id}"} <= set(
        schema["paths"]
    )
    assert {"AlertList", "RuleInput", "RulePatch", "RuleDocument"} <= set(schema["components"]["schemas"])
    assert set(schema["paths"]["/api/alerts/rules/{rule_id}"]) >= {"get", "put", "patch", "delete"}


def test_the_twin_at_a_past_time_shows_the_alerts_that_fired_then(reader, clock, only_rules):
    clock.now -= timedelta(hours=1)
    started = clock.now
    _fire_cpu(clock, only_rules, "web-01")
    clock.evaluate()
    clock.now += timedelta(minutes=10)
    ingest_at([sample_dict("web-01", at=clock.now, cpu_load=10.0)], received_at=clock.now)
    clock.evaluate()
    resolved_at = clock.now

    def at(moment) -> dict:
        return reader.get("/api/twin/state", {"at": iso_utc(moment)}).json()

    during = at(started + timedelta(minutes=5))
    assert list(during)[:5] == ["type", "twinId", "generatedAt", "hosts", "links"]
    ((alert),) = during["alerts"]
    assert (alert["rule"], alert["hostname"], alert["state"], alert["endsAt"]) == ("Cpu", "web-01", "firing", None)
    assert alert["startsAt"] == iso_utc(started)
    assert at(started - timedelta(minutes=1))["alerts"] == []
    assert at(resolved_at + timedelta(seconds=1))["alerts"] == []
    assert "alerts" not in reader.get("/api/twin/state").json()  # the live document keeps the seed's shape


def _overload_rack(clock, name: str = "R9") -> None:
    """Rack ``name`` (5 kW a feed) draws 6 kW: a feed's failure would trip it; the margin rule fires."""
    Rule.objects.exclude(name="RackABMarginNegative").update(enabled=False)
    feeds(floor_rack(name, site="S2"), a=5000.0, b=5000.0)
    samples = [sample_dict(f"p-{i}", at=clock.now, power_watts=3000.0, rack=name) for i in range(2)]
    ingest_at([{k: v for k, v in s.items() if k != "position"} for s in samples], received_at=clock.now)
    clock.evaluate()


def test_a_racks_alert_is_listed_with_its_rack_and_a_null_hostname(reader, clock):
    _overload_rack(clock)
    (alert,) = reader.get("/api/alerts").json()["alerts"]
    assert (alert["rule"], alert["hostname"], alert["rack"], alert["state"]) == (
        "RackABMarginNegative",
        None,
        "R9",
        "firing",
    )
    assert alert["labels"] == {"alertname": "RackABMarginNegative", "rack": "R9", "site": "S2", "severity": "critical"}
    assert alert["values"]["value"] == -1000.0 and alert["causedBy"] is None and alert["affects"] == []


def test_the_history_filters_by_rack_and_the_past_twin_shows_a_racks_alert(reader, clock):
    clock.now -= timedelta(minutes=10)
    _overload_rack(clock)
    by_rack = reader.get("/api/alerts/history", {"rack": "R9"}).json()["alerts"]
    assert [(a["rule"], a["rack"], a["hostname"]) for a in by_rack] == [("RackABMarginNegative", "R9", None)]
    assert reader.get("/api/alerts/history", {"rack": "R1"}).json()["alerts"] == []
    past = reader.get("/api/twin/state", {"at": iso_utc(clock.now + timedelta(minutes=1))}).json()
    assert [(a["rule"], a["rack"]) for a in past["alerts"]] == [("RackABMarginNegative", "R9")]
