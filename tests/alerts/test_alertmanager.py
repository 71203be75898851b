"""A real Prometheus Alertmanager (Debian's, on a loopback port) gets the firing alert and its resolve."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from alerts.delivery import notices_deliver
from alerts.models import Receiver
from tests.conftest import ingest_at, sample_dict
from tests.e2e.conftest import free_port

pytestmark = pytest.mark.django_db

BINARY = "/usr/bin/prometheus-alertmanager"
CONFIG = 'route:\n  receiver: "null"\nreceivers:\n  - name: "null"\n'


@pytest.fixture
def alertmanager(tmp_path: Path):
    if not os.path.exists(BINARY):
        if os.environ.get("TWIN_REQUIRE_ALERTMANAGER"):
            pytest.fail(f"{BINARY} is missing (.ci/run installs prometheus-alertmanager)")
        pytest.skip("prometheus-alertmanager is not installed")
    (tmp_path / "am.yml").write_text(CONFIG)
    port = free_port()
    process = subprocess.Popen(
        [
            BINARY,
            f"--config.file={tmp_path / 'am.yml'}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail("Alertmanager did not become ready")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(tmp_path / "data", ignore_errors=True)


def _active(url: str) -> list[dict]:
    with urllib.request.urlopen(f"{url}/api/v2/alerts", timeout=5) as response:
        return orjson.loads(response.read())


def test_host_offline_reaches_alertmanager_and_its_resolve_ends_it_there(clock, alertmanager, settings):
    settings.TWIN_ALERTS_ALLOW_PRIVATE_RECEIVERS = True
    settings.TWIN_ALERTS_DASHBOARD_URL = "http://twin.example/"
    settings.TWIN_ALERTMANAGER_URL = alertmanager
    from alerts.models import Rule

    Rule.objects.exclude(name="HostOffline").update(enabled=False)
    # Alertmanager keeps a resolve whose endsAt is still ahead active: the story ends by now.
    clock.now -= timedelta(seconds=settings.TWIN_OFFLINE_AFTER_SECONDS + 10)
    ingest_at([sample_dict("web-01", at=clock.now, rack="R4")], received_at=clock.now)
    clock.evaluate(settings.TWIN_OFFLINE_AFTER_SECONDS + 1)
    assert Receiver.objects.get().kind == "alertmanager"
    assert notices_deliver(now=clock.now).sent == 1
    (alert,) = _active(alertmanager)
    assert alert["labels"] == {"alertname": "HostOffline", "hostname": "web-01", "rack": "R4", "severity": "critical"}
    assert alert["status"]["state"] == "active"
    assert alert["generatorURL"] == "http://twin.example/#host=web-01"
    assert "web-01 is offline" in alert["annotations"]["summary"]

    ingest_at([sample_dict("web-01", at=clock.now)], received_at=clock.now)
    clock.evaluate(1)
    assert notices_deliver(now=clock.now).sent == 1
    assert _active(alertmanager) == []  # resolved alerts leave the active list
