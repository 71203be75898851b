"""A real Prometheus Alertmanager (Debian's, on a loopback port) gets the firing alert and its resolve."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pytest
from django.utils import timezone

from alerts.delivery import alerts_repost, notices_deliver
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


def test_a_firing_alert_reposted_before_its_ends_at_stays_active_in_alertmanager(clock, alertmanager, settings):
    settings.TWIN_ALERTS_ALLOW_PRIVATE_RECEIVERS = True
    settings.TWIN_ALERTMANAGER_URL = alertmanager
    settings.TWIN_ALERTMANAGER_REPOST_SECONDS = 1.0  # endsAt 4 s ahead of each post
    from alerts.models import Rule

    Rule.objects.exclude(name="HostOffline").update(enabled=False)
    # Alertmanager keeps its own clock: the twin's must be the real time here.
    silent_since = timezone.now() - timedelta(seconds=settings.TWIN_OFFLINE_AFTER_SECONDS + 1)
    ingest_at([sample_dict("web-01", at=silent_since)], received_at=silent_since)
    clock.now = timezone.now()
    clock.evaluate()
    assert notices_deliver(now=clock.now).sent == 1
    (first,) = _active(alertmanager)
    first_ends = datetime.fromisoformat(first["endsAt"])
    assert abs((first_ends - (clock.now + timedelta(seconds=4))).total_seconds()) < 0.01

    time.sleep(2)
    assert alerts_repost(now=timezone.now()) == 1
    time.sleep(max(0.0, (first_ends - timezone.now()).total_seconds() + 1))  # past the first endsAt
    (alert,) = _active(alertmanager)
    assert alert["status"]["state"] == "active"
    assert datetime.fromisoformat(alert["endsAt"]) > first_ends
    assert alert["startsAt"] == first["startsAt"]


def test_only_alerts_whose_firing_reached_alertmanager_are_reposted(clock, settings):
    settings.TWIN_ALERTMANAGER_URL = "http://127.0.0.1:9/"
    from alerts.models import Rule

    Rule.objects.exclude(name="HostOffline").update(enabled=False)
    ingest_at([sample_dict("web-01", at=clock.now)], received_at=clock.now)
    clock.evaluate(settings.TWIN_OFFLINE_AFTER_SECONDS + 1)
    assert alerts_repost(now=clock.now) == 0  # queued, not yet sent: the notice itself will tell it


def test_a_racks_power_alert_reaches_alertmanager_naming_the_rack_and_no_host(clock, alertmanager, settings):
    from alerts.models import Rule
    from tests.facility.factories import feeds, floor_rack

    settings.TWIN_ALERTS_ALLOW_PRIVATE_RECEIVERS = True
    settings.TWIN_ALERTMANAGER_URL = alertmanager
    Rule.objects.exclude(name="RackABMarginNegative").update(enabled=False)
    feeds(floor_rack("R4", site="AMS1"), a=5000.0, b=5000.0)
    # Alertmanager keeps a resolve whose endsAt is still ahead active: the story ends by now.
    clock.now -= timedelta(seconds=30)

    def draw(watts: float) -> None:
        samples = [sample_dict(f"r4-{i}", at=clock.now, power_watts=watts, rack="R4") for i in range(3)]
        ingest_at([{k: v for k, v in s.items() if k != "position"} for s in samples], received_at=clock.now)

    draw(2000.0)  # 6 kW on feeds of 5 kW: a failover would trip the survivor
    clock.evaluate()
    assert notices_deliver(now=clock.now).sent == 1
    (alert,) = _active(alertmanager)
    assert alert["labels"] == {
        "alertname": "RackABMarginNegative",
        "rack": "R4",
        "site": "AMS1",
        "severity": "critical",
    }
    assert "Rack R4 would trip" in alert["annotations"]["summary"]

    clock.now += timedelta(seconds=1)
    draw(1000.0)
    clock.evaluate()
    assert notices_deliver(now=clock.now).sent == 1
    assert _active(alertmanager) == []
