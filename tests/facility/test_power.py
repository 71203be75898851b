"""A rack's power: measured and nameplate draw against its feeds, and the A/B check on measured load."""

from __future__ import annotations

import pytest

from facility.models import PowerFeed
from facility.selectors import rack_power
from facility.services import mount_place
from hosts.models import Host
from tests.conftest import ingest_at, sample_dict
from tests.facility.factories import feeds, floor_rack

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("reader", password="a-long-password-1"))
    return client


def rack_with_hosts(*, watts: list[float], nameplate: float = 500.0, a: float = 5000.0, b: float = 5000.0):
    rack = floor_rack("R1")
    feeds(rack, a=a, b=b)
    samples = [sample_dict(f"h-{i}", power_watts=w, inlet_temp_celsius=22.5, rack="R1") for i, w in enumerate(watts)]
    samples = [{k: v for k, v in s.items() if k != "position"} for s in samples]
    ingest_at(samples)
    for i in range(len(watts)):
        mount_place(
            host=Host.objects.get(hostname=f"h-{i}"), rack=rack, unit=1 + 2 * i, height_u=2, nameplate_watts=nameplate
        )
    return rack


def test_measured_and_nameplate_draw_are_summed_against_both_feeds():
    rack_with_hosts(watts=[300.0, 450.0, 250.0])
    doc = rack_power(name="R1")
    assert doc is not None
    assert (doc["hosts"], doc["hostsMeasured"], doc["measuredWatts"], doc["nameplateWatts"]) == (3, 3, 1000.0, 1500.0)
    assert doc["capacityWatts"] == 10000.0 and doc["measuredShare"] == 0.1
    assert doc["abOk"] is True
    assert [(f["failedFeed"], f["survivingFeed"], f["marginWatts"]) for f in doc["failover"]] == [
        ("A", "B", 4000.0),
        ("B", "A", 4000.0),
    ]


def test_a_rack_whose_load_one_feed_cannot_carry_fails_the_ab_check_on_that_side():
    rack_with_hosts(watts=[1500.0, 1500.0], a=5000.0, b=2000.0)
    doc = rack_power(name="R1")
    assert doc is not None
    by_failed = {f["failedFeed"]: f for f in doc["failover"]}
    assert by_failed["A"]["carries"] is False and by_failed["A"]["marginWatts"] == -1000.0
    assert by_failed["B"]["carries"] is True
    assert doc["abOk"] is False


def test_a_rack_with_one_feed_never_passes_the_ab_check():
    rack = rack_with_hosts(watts=[100.0])
    PowerFeed.objects.filter(rack=rack, side="B").delete()
    doc = rack_power(name="R1")
    assert doc is not None
    assert doc["abOk"] is False and doc["failover"][0]["survivingFeed"] is None


def test_the_power_endpoint_answers_the_racks_document_and_404_for_an_unknown_rack(reader_client):
    rack_with_hosts(watts=[300.0])
    body = reader_client.get("/api/racks/R1/power").json()
    assert body["rack"] == "R1" and body["site"] == "S1" and body["measuredWatts"] == 300.0
    assert [f["side"] for f in body["feeds"]] == ["A", "B"]
    missing = reader_client.get("/api/racks/nope/power")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


def test_power_and_inlet_temperature_join_the_twin_document():
    rack_with_hosts(watts=[312.5])
    from twin.snapshot import snapshot_build

    doc = next(h for h in snapshot_build()["hosts"] if h["hostname"] == "h-0")
    assert doc["metrics"]["powerWatts"] == 312.5 and doc["metrics"]["inletTempCelsius"] == 22.5
