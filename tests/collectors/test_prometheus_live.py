"""A real node_exporter scraped by a real Prometheus that remote-writes to a live twin (Debian's, on loopback).

Skipped only when the binaries are absent; CI installs them and sets
``TWIN_REQUIRE_PROMETHEUS``, which turns the skip into a failure.
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from collectors.services import collector_token_create
from tests.e2e.conftest import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PROMETHEUS = "/usr/bin/prometheus"
NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"
HOSTNAME = "ci-node-exporter"


def _require(binary: str) -> None:
    if not os.path.exists(binary):
        if os.environ.get("TWIN_REQUIRE_PROMETHEUS"):
            pytest.fail(f"{binary} is missing (.ci/run installs prometheus and prometheus-node-exporter)")
        pytest.skip(f"{binary} is not installed")


def _ready(url: str, process: subprocess.Popen, log: Path, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{process.args[0]} exited:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"{url} did not answer in {seconds} s:\n{log.read_text(errors='replace')[-3000:]}")


def _daemon(args: list[str], ready_url: str, log: Path) -> subprocess.Popen:
    process = subprocess.Popen(args, stdout=log.open("w"), stderr=subprocess.STDOUT)
    _ready(ready_url, process, log)
    return process


@pytest.fixture
def node_exporter(tmp_path: Path) -> Iterator[str]:
    _require(NODE_EXPORTER)
    address = f"127.0.0.1:{free_port()}"
    process = _daemon(
        [NODE_EXPORTER, f"--web.listen-address={address}"], f"http://{address}/metrics", tmp_path / "node.log"
    )
    yield address
    process.terminate()
    process.wait(timeout=10)


def test_a_prometheus_remote_writing_node_exporter_puts_this_machine_on_the_floor(
    live_twin, node_exporter, tmp_path: Path
):
    _require(PROMETHEUS)
    _, token = collector_token_create(name="ci-prometheus")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "node",
                "static_configs": [{"targets": [node_exporter], "labels": {"hostname": HOSTNAME}}],
            }
        ],
        "remote_write": [
            {
                "url": f"{live_twin.url}/api/v1/write",
                "authorization": {"credentials": token},
                "queue_config": {"batch_send_deadline": "1s", "min_backoff": "100ms", "max_backoff": "1s"},
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_bytes(orjson.dumps(config))  # JSON is YAML
    address = f"127.0.0.1:{free_port()}"
    prometheus = _daemon(
        [
            PROMETHEUS,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address={address}",
        ],
        f"http://{address}/-/ready",
        tmp_path / "prometheus.log",
    )
    try:
        host = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{live_twin.url}/api/twin/state", timeout=5) as response:
                    hosts = {h["hostname"]: h for h in orjson.loads(response.read())["hosts"]}
            except urllib.error.HTTPError as exc:
                pytest.fail(f"GET /api/twin/state answered {exc.code}:\n{live_twin.output()[-5000:]}")
            host = hosts.get(HOSTNAME)
            if host is not None and host["metrics"]["cpuLoad"] is not None:
                break
            time.sleep(0.5)
        assert host is not None, (tmp_path / "prometheus.log").read_text()[-3000:] + live_twin.output()[-3000:]
        metrics = host["metrics"]
        assert 0 <= metrics["cpuLoad"] <= 100 and 0 < metrics["memoryUsedPercent"] < 100
        assert metrics["loadAverage"] >= 0 and metrics["uptimeSeconds"] > 0
        assert host["status"] == "online" and host["platform"].startswith("Linux-")
        # This machine's real uptime, as node_exporter read it from the kernel.
        with open("/proc/uptime") as f:
            assert abs(metrics["uptimeSeconds"] - float(f.read().split()[0])) < 120
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=20)
