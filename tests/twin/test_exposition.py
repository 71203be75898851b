"""GET /api/twin/metrics: every host as Prometheus series, written as prometheus_client writes them."""

from __future__ import annotations

import gzip
import math
import os
import shutil
import subprocess
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_parse
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.authtoken.models import Token

from metrics.fields import METRIC_FIELDS, Kind
from tests.conftest import ingest_at, sample_dict
from tests.facility.factories import floor_rack
from twin.exposition import (
    FAMILIES,
    FIELD_FAMILIES,
    exposition_render,
    families_encode,
    family_named,
    host_families,
    labels_merge,
    labels_text,
    sample_line,
)

PROMTOOL = "/usr/bin/promtool"
HOSTILE = 'evil"host\\with\nnewline'


def host_doc(hostname: str = "web-01", **overrides: Any) -> dict[str, Any]:
    """A host's document as the twin-state snapshot writes it."""
    doc: dict[str, Any] = {
        "hostname": hostname,
        "displayName": hostname,
        "ip": "10.0.0.1",
        "status": "online",
        "lastSeen": "2026-12-08T02:00:00.500Z",
        "agentVersion": "1.0.0",
        "platform": "Linux-x86_64",
        "rack": "R1",
        "metrics": {"cpuLoad": 42.5, "memoryUsedPercent": 63.2, "loadAverage": 1.72, "uptimeSeconds": 7200},
        "position": {"x": 0.0, "y": 0.0, "z": 0.0},
        "isVirtual": False,
        "reachable": True,
        "redundancy": 1,
    }
    doc.update(overrides)
    return doc


def samples_of(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def library_rewrite(text: bytes, *, openmetrics: bool) -> bytes:
    """``text`` read by prometheus_client's parser and written again by its generator: the reference bytes."""
    parse = openmetrics_parse if openmetrics else text_string_to_metric_families
    families = list(parse(text.decode()))

    class Collector:
        def collect(self):
            yield from families

    return openmetrics_latest(Collector()) if openmetrics else generate_latest(Collector())


def test_each_field_of_the_registry_is_a_family_named_with_its_unit():
    names = {f.name: FIELD_FAMILIES[f.key].name for f in METRIC_FIELDS}
    assert names["cpu_load"] == "twin_host_cpu_load_percent"
    assert names["memory_used_percent"] == "twin_host_memory_used_percent"
    assert names["load_average"] == "twin_host_load_average"
    assert names["uptime_seconds"] == "twin_host_uptime_seconds"
    assert names["net_bytes_tx"] == "twin_host_net_bytes_tx"
    assert FIELD_FAMILIES["netBytesTx"].kind == Kind.COUNTER
    assert FIELD_FAMILIES["uptimeSeconds"].unit == "seconds"
    assert FIELD_FAMILIES["netBytesTx"].unit == ""  # its name does not end with bytes: OpenMetrics gives no unit


def test_a_counter_is_sampled_with_total_and_its_type_said_once():
    families = host_families(hosts=[host_doc(metrics={"netBytesTx": 1250000000})], sites={})
    text = families_encode(families, openmetrics=False).decode()
    assert "# TYPE twin_host_net_bytes_tx_total counter\n" in text
    assert 'twin_host_net_bytes_tx_total{hostname="web-01",rack="R1"} 1.25e+09\n' in text
    open_text = families_encode(families, openmetrics=True).decode()
    assert "# TYPE twin_host_net_bytes_tx counter\n" in open_text
    assert open_text.endswith("# EOF\n")


def test_each_series_is_labelled_with_the_hosts_hostname_rack_and_site():
    families = host_families(hosts=[host_doc(), host_doc("loose-01", rack=None)], sites={"R1": "dc-east"})
    samples = samples_of(families_encode(families, openmetrics=False).decode())
    placed = (("hostname", "web-01"), ("rack", "R1"), ("site", "dc-east"))
    assert samples[("twin_host_cpu_load_percent", placed)] == 42.5
    assert samples[("twin_host_cpu_load_percent", (("hostname", "loose-01"),))] == 42.5


def test_hostile_hostnames_racks_and_facts_are_escaped_and_read_back_unchanged():
    doc = host_doc(HOSTILE, rack='rack "A"\\1', displayName="line\nbreak", platform='q"uote')
    families = host_families(hosts=[doc], sites={'rack "A"\\1': "si\nte"})
    for text in (families_encode(families, openmetrics=False), families_encode(families, openmetrics=True)):
        assert b'hostname="evil\\"host\\\\with\\nnewline"' in text
        # No value breaks a line: each is a comment or a sample of ours.
        assert all(line.startswith((b"#", b"twin_host_")) for line in text.splitlines())
    labels = (("hostname", HOSTILE), ("rack", 'rack "A"\\1'), ("site", "si\nte"))
    parsed = samples_of(families_encode(families, openmetrics=False).decode())
    assert parsed[("twin_host_cpu_load_percent", labels)] == 42.5
    opened = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in openmetrics_parse(families_encode(families, openmetrics=True).decode())
        for s in family.samples
    }
    assert opened[("twin_host_cpu_load_percent", labels)] == 42.5


def test_the_text_is_byte_for_byte_what_prometheus_client_writes_in_both_formats():
    hosts = [
        host_doc(HOSTILE, rack='r"1', metrics={"cpuLoad": 0.0, "netBytesRx": 2**62, "uptimeSeconds": 5}),
        host_doc("web-02", status="stale", reachable=False, redundancy=0, lastSeen=None, ip=None, isVirtual=True),
        host_doc("web-03", rack=None, metrics={"cpuLoad": None, "loadAverage": 1e-9}),
    ]
    families = host_families(hosts=hosts, sites={'r"1': "S\\1"})
    for openmetrics in (False, True):
        text = families_encode(families, openmetrics=openmetrics)
        assert text == library_rewrite(text, openmetrics=openmetrics)


def test_absent_and_nan_values_give_no_series_rather_than_a_zero():
    doc = host_doc(metrics={"cpuLoad": math.nan, "memoryUsedPercent": None, "loadAverage": 0.0})
    samples = samples_of(families_encode(host_families(hosts=[doc], sites={}), openmetrics=False).decode())
    names = {name for name, _ in samples}
    assert "twin_host_cpu_load_percent" not in names
    assert "twin_host_memory_used_percent" not in names
    assert samples[("twin_host_load_average", (("hostname", "web-01"), ("rack", "R1")))] == 0.0


def test_a_host_never_seen_has_no_last_seen_series():
    doc = host_doc(status="unknown", lastSeen=None)
    samples = samples_of(families_encode(host_families(hosts=[doc], sites={}), openmetrics=False).decode())
    assert not any(name == "twin_host_last_seen_timestamp_seconds" for name, _ in samples)


def test_the_status_is_one_series_per_status_with_1_for_the_current_one():
    doc = host_doc(status="stale", reachable=False, redundancy=0)
    samples = samples_of(families_encode(host_families(hosts=[doc], sites={}), openmetrics=False).decode())
    host = (("hostname", "web-01"), ("rack", "R1"))
    status = {dict(labels)["status"]: value for (name, labels), value in samples.items() if name == "twin_host_status"}
    assert status == {"online": 0.0, "stale": 1.0, "offline": 0.0, "unknown": 0.0}
    assert samples[("twin_host_up", host)] == 0.0
    assert samples[("twin_host_reachable", host)] == 0.0
    assert samples[("twin_host_live_uplinks", host)] == 0.0
    seen = datetime(2026, 12, 8, 2, 0, 0, 500000, tzinfo=UTC).timestamp()
    assert samples[("twin_host_last_seen_timestamp_seconds", host)] == seen


def test_a_labelled_series_keeps_the_hosts_labels_and_exports_its_own_clashing_ones():
    merged = labels_merge({"hostname": "web-01", "rack": "R1"}, {"mount": "/", "hostname": "container-7"})
    assert merged == {"hostname": "web-01", "rack": "R1", "mount": "/", "exported_hostname": "container-7"}
    assert labels_text(merged) == 'exported_hostname="container-7",hostname="web-01",mount="/",rack="R1"'


def test_a_labelled_metric_slots_in_as_one_more_family_with_its_own_lines():
    disk = family_named(name="disk_used_percent", kind=Kind.GAUGE, help_text="Disk in use, percent.", unit="percent")
    line = sample_line(disk, labels_text(labels_merge({"hostname": "web-01"}, {"mount": "/"})), 71.2)
    families = [*host_families(hosts=[host_doc()], sites={}), (disk, [line])]
    text = families_encode(families, openmetrics=True)
    assert b'twin_host_disk_used_percent{hostname="web-01",mount="/"} 71.2\n' in text
    assert b"# UNIT twin_host_disk_used_percent percent\n" in text
    assert text == library_rewrite(text, openmetrics=True)


def test_a_name_outside_prometheus_grammar_is_refused():
    with pytest.raises(ValueError, match="label name"):
        labels_text({"bad-name": "x"})
    with pytest.raises(ValueError, match="metric name"):
        family_named(name="disk used", kind=Kind.GAUGE, help_text="x")


def promtool_check(text: bytes) -> subprocess.CompletedProcess:
    if not shutil.which(PROMTOOL):
        if os.environ.get("TWIN_REQUIRE_PROMETHEUS"):
            pytest.fail(f"{PROMTOOL} is missing (.ci/run installs Debian's prometheus)")
        pytest.skip("promtool is not installed (Debian's prometheus)")
    return subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, timeout=30)


@pytest.mark.django_db
def test_promtool_accepts_the_exposition_of_a_real_fleet_with_hostile_names():
    floor_rack("R1", site="dc-east")
    ingest_at(
        [
            sample_dict("web-01", rack="R1", power_watts=310.5, inlet_temp_celsius=24.0),
            sample_dict("web-02", rack='R"2\\b'),
            sample_dict("web-03", rack=None, position=None),
        ]
    )
    body, content_type = exposition_render(accept=None)
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    checked = promtool_check(body)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout + checked.stderr == b""  # no lint warning either
    exposed = {family.name for family in text_string_to_metric_families(body.decode())}
    assert "twin_host_cpu_load_percent" in exposed
    assert exposed <= {family.name for family in FAMILIES}


@pytest.mark.django_db
def test_a_host_in_a_rack_standing_in_a_site_is_labelled_with_the_site():
    floor_rack("R1", site="dc-east")
    ingest_at([sample_dict("web-01", rack="R1"), sample_dict("web-02", rack="R9")])
    samples = samples_of(exposition_render(accept=None)[0].decode())
    assert samples[("twin_host_up", (("hostname", "web-01"), ("rack", "R1"), ("site", "dc-east")))] == 1.0
    assert samples[("twin_host_up", (("hostname", "web-02"), ("rack", "R9")))] == 1.0  # a rack with no place


@pytest.mark.django_db
def test_every_family_is_exposed_once_a_host_reports_every_field():
    floor_rack("R1", site="dc-east")
    ingest_at([sample_dict("web-01", power_watts=310.5, inlet_temp_celsius=24.0)])
    body, _ = exposition_render(accept="application/openmetrics-text; version=1.0.0")
    assert {family.name for family in openmetrics_parse(body.decode())} == {family.name for family in FAMILIES}


@pytest.fixture
def reader_token(django_user_model) -> str:
    user = django_user_model.objects.create_user("prometheus", password="a-long-password-1")
    return Token.objects.create(user=user).key


@pytest.mark.django_db
def test_a_readers_token_scrapes_the_classic_text_format(client, reader_token):
    ingest_at([sample_dict("web-01", cpu_load=12.5)])
    response = client.get("/api/twin/metrics", headers={"Authorization": f"Token {reader_token}"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples = samples_of(response.content.decode())
    assert samples[("twin_host_cpu_load_percent", (("hostname", "web-01"), ("rack", "R1")))] == 12.5


@pytest.mark.django_db
def test_prometheus_asking_for_openmetrics_gets_it(client, reader_token):
    ingest_at([sample_dict("web-01")])
    # What Prometheus 2 sends.
    accept = (
        "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
        "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    )
    response = client.get("/api/twin/metrics", headers={"Authorization": f"Token {reader_token}", "Accept": accept})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert response.content.endswith(b"# EOF\n")
    only = client.get(
        "/api/twin/metrics",
        headers={"Authorization": f"Token {reader_token}", "Accept": "application/openmetrics-text"},
    )
    assert only.status_code == 200 and only.content.endswith(b"# EOF\n")


@pytest.mark.django_db
def test_the_exposition_is_private_as_every_read_is(client):
    response = client.get("/api/twin/metrics")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == "not_authenticated"
    wrong = client.get("/api/twin/metrics", headers={"Authorization": "Token nope", "Accept": "text/plain"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "authentication_failed"


@pytest.mark.django_db
def test_the_exposition_is_in_the_api_schema(client):
    schema = client.get("/api/schema/", headers={"Accept": "application/json"}).json()
    content = schema["paths"]["/api/twin/metrics"]["get"]["responses"]["200"]["content"]
    assert set(content) == {"text/plain", "application/openmetrics-text"}


@pytest.mark.django_db
def test_a_scraper_accepting_gzip_gets_the_exposition_gzipped_and_caches_vary_on_accept(client, reader_token):
    ingest_at([sample_dict("web-01")])
    headers = {"Authorization": f"Token {reader_token}", "Accept-Encoding": "gzip"}
    response = client.get("/api/twin/metrics", headers=headers)
    assert response.status_code == 200
    assert response["Content-Encoding"] == "gzip"
    assert {"Accept", "Accept-Encoding"} <= {v.strip() for v in response["Vary"].split(",")}
    text = gzip.decompress(response.content).decode()
    assert 'twin_host_up{hostname="web-01",rack="R1"} 1.0' in text
