"""The twin at a past time: equal to the live snapshot taken at that moment, from raw samples or rollups."""

from __future__ import annotations

import time
from datetime import timedelta

import orjson
import pytest
from django.utils import timezone

from common.formats import iso_utc
from hosts.models import Host, Link
from metrics.rollups import rollups_rebuild
from tests.conftest import ingest_at, sample_dict
from twin.snapshot import snapshot_build

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("open_twin")]


def at_millisecond(moment):
    """Times travel as ISO text with milliseconds."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def state_at(client, moment):
    response = client.get("/api/twin/state", {"at": iso_utc(moment)})
    assert response.status_code == 200, response.content
    return orjson.loads(response.content)


def fleet_reports(now, *, offset_seconds=0):
    """Three hosts in two racks, counters moving, one silent for a minute; the core switch links them."""
    for i, hostname in enumerate(("titan-01", "titan-02", "titan-03")):
        silence = 60 if hostname == "titan-03" else 0
        for step in range(3):
            at = now - timedelta(seconds=silence + 20 - 10 * step + offset_seconds)
            ingest_at(
                [
                    sample_dict(
                        hostname,
                        at=at,
                        cpu_load=10.0 * i + step,
                        net_bytes_tx=1_000_000_000 * step + i,
                        net_bytes_rx=500_000_000 * step,
                        rack=f"R{i % 2}",
                    )
                ],
                received_at=at + timedelta(milliseconds=150),
            )


def test_the_twin_at_a_time_equals_the_live_snapshot_taken_then(client):
    fleet_reports(timezone.now() - timedelta(seconds=1))  # every sample received before the moment
    time.sleep(0.005)
    moment = at_millisecond(timezone.now())
    live = snapshot_build(now=moment)
    assert [h["status"] for h in live["hosts"]] == ["online", "online", "online", "stale"]
    assert live["links"][0]["throughputGbps"] > 0
    # Later: more samples arrive, another host appears. (Placement is the inventory's,
    # which keeps no history: the same rack here.)
    time.sleep(0.01)
    later = timezone.now()
    ingest_at([sample_dict("titan-01", at=later, cpu_load=99.0, rack="R0")], received_at=later)
    ingest_at([sample_dict("newcomer-01", at=later)], received_at=later)
    past = state_at(client, moment)
    # The past document adds what apps above the twin knew then (twin.past): no alert fired here.
    assert past.pop("alerts") == []
    assert past == orjson.loads(orjson.dumps(live))


def test_a_host_or_link_created_after_the_time_is_not_in_the_twin_of_then(client):
    fleet_reports(timezone.now() - timedelta(seconds=1))
    moment = at_millisecond(timezone.now())
    time.sleep(0.01)
    Host.objects.create(hostname="spare-99")
    Link.objects.create(source=Host.objects.get(hostname="titan-01"), target=Host.objects.get(hostname="titan-02"))
    state = state_at(client, moment)
    assert "spare-99" not in [h["hostname"] for h in state["hosts"]]
    assert "titan-01::titan-02" not in [link["id"] for link in state["links"]]
    assert state["generatedAt"] == iso_utc(moment)


def test_before_its_first_sample_arrived_a_host_was_not_there_yet(client):
    moment = at_millisecond(timezone.now())
    fleet_reports(moment + timedelta(seconds=100))
    assert [h["hostname"] for h in state_at(client, moment)["hosts"]] == ["core-switch"]


def test_a_time_older_than_the_raw_samples_is_read_from_rollups(client, settings):
    settings.TWIN_RAW_RETENTION_DAYS = 14
    old = timezone.now() - timedelta(days=20)
    old = old.replace(minute=old.minute // 5 * 5, second=0, microsecond=0)  # a 5-minute bucket's start
    samples = [
        sample_dict(at=old + timedelta(seconds=10 * i), cpu_load=float(40 + i), net_bytes_tx=10_000 * i, net_bytes_rx=0)
        for i in range(6)
    ]
    ingest_at(samples, received_at=old + timedelta(minutes=1))
    # The core switch, the host and its uplink were created now (the test database, ingest): as if then.
    Host.objects.update(created_at=old - timedelta(days=1))
    Link.objects.update(created_at=old - timedelta(days=1))
    rollups_rebuild(received_after=old, received_until=old + timedelta(minutes=2), stamped_from=old - timedelta(days=1))
    titan = next(h for h in state_at(client, old + timedelta(seconds=55))["hosts"] if h["hostname"] == "titan-01")
    assert titan["status"] == "online"
    assert titan["metrics"]["cpuLoad"] == pytest.approx(42.5)  # the bucket's average
    assert titan["metrics"]["netBytesTx"] == 50_000  # the bucket's last reading
    link = state_at(client, old + timedelta(seconds=55))["links"][0]
    assert link["throughputGbps"] == pytest.approx(1_000 * 8 / 1e9)


@pytest.mark.parametrize("value", ["yesterday", "2026-11-29T10:00:00", "1969-12-31T23:59:59Z", ""])
def test_a_bad_time_is_a_400_that_names_it(client, value):
    response = client.get("/api/twin/state", {"at": value})
    assert response.status_code == 400 and response.json()["parameter"] == "at"


def test_a_time_in_the_future_is_refused(client):
    response = client.get("/api/twin/state", {"at": iso_utc(timezone.now() + timedelta(minutes=5))})
    assert response.status_code == 400 and response.json()["parameter"] == "at"
