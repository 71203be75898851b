"""deploy/grafana and deploy/prometheus: a dashboard on metrics the exposition writes, and valid configs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ingest_at, sample_dict
from tests.facility.factories import floor_rack
from twin.exposition import exposition_render

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "twin-dashboard.json"
PROMTOOL = "/usr/bin/promtool"
# Grafana's variables, as the dashboard's defaults ("All") expand them.
VARIABLES = {"$__rate_interval": "1m", "$site": ".*", "$rack": ".*", "$hostname": ".*"}


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def dashboard_queries() -> list[str]:
    """Every PromQL expression of the dashboard: its panels' and its variables'."""
    board = dashboard()
    queries = [target["expr"] for panel in board["panels"] for target in panel.get("targets", [])]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            queries.append(variable["query"]["query"])
    return queries


def promql_of(query: str) -> str:
    """A query as Prometheus receives it from Grafana (``label_values(m, l)`` asks for the series of ``m``)."""
    for name, value in VARIABLES.items():
        query = query.replace(name, value)
    found = re.fullmatch(r"label_values\((.+), *\w+\)", query)
    return found.group(1) if found else query


def metric_names(query: str) -> set[str]:
    # Outside label matchers (which hold values such as "online"), every twin_ word names a metric.
    return set(re.findall(r"\btwin_\w+", re.sub(r"\{[^}]*\}", "{}", query)))


def test_the_dashboard_is_json_with_panels_on_a_prometheus_data_source_variable():
    board = dashboard()
    assert board["uid"] == "digital-twin-fleet"
    assert board["panels"]
    for panel in board["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
    assert len({panel["id"] for panel in board["panels"]}) == len(board["panels"])


@pytest.mark.django_db
def test_every_query_names_only_metrics_the_exposition_writes():
    floor_rack("R1", site="dc-east")
    ingest_at([sample_dict("web-01", rack="R1", power_watts=300.0, inlet_temp_celsius=22.5)])
    body, _ = exposition_render(accept=None)
    written = {s.name for family in text_string_to_metric_families(body.decode()) for s in family.samples}
    named = set()
    for query in dashboard_queries():
        names = metric_names(query)
        assert names, f"no twin metric in {query!r}"
        assert names <= written, f"{query!r} names {sorted(names - written)}, which the exposition never writes"
        named |= names
    assert {"twin_host_cpu_load_percent", "twin_host_status", "twin_host_net_bytes_tx_total"} <= named


def test_every_query_is_valid_promql():
    if not shutil.which(PROMTOOL):
        if os.environ.get("TWIN_REQUIRE_PROMETHEUS"):
            pytest.fail(f"{PROMTOOL} is missing (.ci/run installs Debian's prometheus)")
        pytest.skip("promtool is not installed (Debian's prometheus)")
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query{i}", "expr": promql_of(q)} for i, q in enumerate(dashboard_queries())
                ],
            }
        ]
    }
    checked = subprocess.run(
        [PROMTOOL, "check", "rules", "/dev/stdin"], input=json.dumps(rules).encode(), capture_output=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_shipped_prometheus_config_scrapes_the_exposition_with_a_token_and_is_valid(tmp_path):
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/api/twin/metrics"
    assert job["authorization"]["type"] == "Token"
    if not shutil.which(PROMTOOL):
        if os.environ.get("TWIN_REQUIRE_PROMETHEUS"):
            pytest.fail(f"{PROMTOOL} is missing (.ci/run installs Debian's prometheus)")
        pytest.skip("promtool is not installed (Debian's prometheus)")
    # promtool checks that the token file exists: one of the test's own stands in.
    (tmp_path / "token").write_text("a-reader-token")
    job["authorization"]["credentials_file"] = str(tmp_path / "token")
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    checked = subprocess.run([PROMTOOL, "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_grafana_provisioning_names_a_prometheus_source_and_the_dashboards_folder():
    (source,) = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/twin.yml").read_text())["datasources"]
    assert source["type"] == "prometheus"
    (provider,) = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/twin.yml").read_text())["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] in (DEPLOY.parent / "docs" / "grafana.md").read_text()
