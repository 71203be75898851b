"""A real Prometheus (Debian's, on a loopback port) scrapes a live twin's /api/twin/metrics with a reader's token."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from rest_framework.authtoken.models import Token

from tests.conftest import sample_dict
from tests.e2e.conftest import LiveServer, free_port, server_start, server_stop
from tests.test_grafana_dashboard import dashboard_queries, promql_of

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

BINARY = "/usr/bin/prometheus"
CONFIG = """global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: twin
    metrics_path: /api/twin/metrics
    authorization:
      type: Token
      credentials: {token}
    static_configs:
      - targets: ["{target}"]
  - job_name: anonymous
    metrics_path: /api/twin/metrics
    static_configs:
      - targets: ["{target}"]
"""


@pytest.fixture
def private_twin(transactional_db, django_db_serialized_rollback, tmp_path, channel_prefix) -> Iterator[LiveServer]:
    server = server_start(tmp_path, CHANNEL_LAYER_PREFIX=channel_prefix, TWIN_PUBLIC_READ="false")
    yield server
    server_stop(server)


@pytest.fixture
def reader_token(django_user_model) -> str:
    user = django_user_model.objects.create_user("prometheus", password="a-long-password-1")
    return Token.objects.create(user=user).key


def prometheus_start(tmp_path: Path, *, target: str, token: str) -> tuple[subprocess.Popen, str]:
    if not os.path.exists(BINARY):
        if os.environ.get("TWIN_REQUIRE_PROMETHEUS"):
            pytest.fail(f"{BINARY} is missing (.ci/run installs Debian's prometheus)")
        pytest.skip("prometheus is not installed")
    config = tmp_path / "prometheus.yml"
    config.write_text(CONFIG.format(token=token, target=target))
    port = free_port()
    process = subprocess.Popen(
        [
            BINARY,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "prometheus.log").open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
                if response.status == 200:
                    return process, url
        except OSError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            pytest.fail("Prometheus did not become ready:\n" + (tmp_path / "prometheus.log").read_text())
        time.sleep(0.2)


def promql(url: str, query: str) -> list[dict]:
    with urllib.request.urlopen(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': query})}", timeout=5) as r:
        answer = orjson.loads(r.read())
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def metadata(url: str, metric: str) -> dict:
    query = urllib.parse.urlencode({"metric": metric, "match_target": '{job="twin"}'})
    with urllib.request.urlopen(f"{url}/api/v1/targets/metadata?{query}", timeout=5) as response:
        (found,) = orjson.loads(response.read())["data"]
    return found


def targets(url: str) -> list[dict]:
    with urllib.request.urlopen(f"{url}/api/v1/targets", timeout=5) as response:
        return orjson.loads(response.read())["data"]["activeTargets"]


def test_prometheus_scrapes_the_twin_with_a_token_and_promql_returns_the_hosts_cpu_by_hostname(
    private_twin: LiveServer, reader_token: str, tmp_path: Path
):
    batch = orjson.dumps({"samples": [sample_dict("prom-web-01", cpu_load=37.5, rack="R7", power_watts=250.0)]})
    request = urllib.request.Request(
        f"{private_twin.url}/api/metrics/batch", data=batch, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202
    target = private_twin.url.removeprefix("http://")
    process, url = prometheus_start(tmp_path, target=target, token=reader_token)
    try:
        deadline = time.monotonic() + 30
        result: list[dict] = []
        while time.monotonic() < deadline:
            result = promql(url, 'twin_host_cpu_load_percent{hostname="prom-web-01"}')
            if result:
                break
            time.sleep(0.5)
        assert result, f"no series after 30 s; targets: {targets(url)}"
        (series,) = result
        assert series["metric"]["__name__"] == "twin_host_cpu_load_percent"
        assert series["metric"]["hostname"] == "prom-web-01"
        assert series["metric"]["rack"] == "R7"
        assert series["metric"]["job"] == "twin"
        assert float(series["value"][1]) == 37.5
        health = {t["labels"]["job"]: t for t in targets(url)}
        assert health["twin"]["health"] == "up", health
        # The same scrape without the token is refused, as every read is.
        while health["anonymous"]["health"] == "unknown" and time.monotonic() < deadline:
            time.sleep(0.5)
            health = {t["labels"]["job"]: t for t in targets(url)}
        assert health["anonymous"]["health"] == "down"
        assert "401" in health["anonymous"]["lastError"]
        assert not promql(url, 'twin_host_cpu_load_percent{job="anonymous"}')
        # The Grafana dashboard's queries run on this Prometheus as Grafana sends them, and find the host.
        answered = {query: promql(url, promql_of(query)) for query in dashboard_queries()}
        assert answered['sum(twin_host_status{status="online", site=~"$site", rack=~"$rack", hostname=~"$hostname"})']
        assert promql(url, 'twin_host_up{hostname="prom-web-01"}')[0]["value"][1] == "1"
        # Prometheus 2 asks for OpenMetrics first: the unit it keeps is what only that format says (# UNIT).
        assert metadata(url, "twin_host_uptime_seconds")["unit"] == "seconds"
    finally:
        process.terminate()
        process.wait(timeout=10)
