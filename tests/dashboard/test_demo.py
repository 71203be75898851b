"""The demo fleet: a floor of racks whose samples the server accepts."""

from __future__ import annotations

from datetime import UTC, datetime

from dashboard.demo import fleet_samples, floor_plan


def test_every_host_has_a_place_of_its_own_in_a_rack():
    plan = floor_plan(hosts=1000, per_rack=20)
    places = {(p["position"]["x"], p["position"]["y"], p["position"]["z"]) for p in plan}
    assert len(places) == 1000
    racks = {p["rack"] for p in plan}
    assert len(racks) == 50
    xs = [p["position"]["x"] for p in plan]
    zs = [p["position"]["z"] for p in plan]
    # Centred on the core switch at the origin.
    assert abs(min(xs) + max(xs)) < 1e-6
    assert abs(min(zs) + max(zs)) < 2.5


def test_later_rounds_leave_some_hosts_silent_so_they_go_stale():
    first = fleet_samples(hosts=400, round_number=0)
    assert len(first) == 800
    at = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    later = fleet_samples(hosts=400, round_number=1, now=at)
    assert 360 < len(later) < 400
    assert fleet_samples(hosts=400, round_number=1, now=at) == later  # the same call, the same samples


def test_the_server_accepts_every_demo_sample(post_batch, open_twin, db):
    response = post_batch(fleet_samples(hosts=60, round_number=0))
    assert response.status_code == 202, response.content
    assert response.json()["accepted"] == 120
    response = post_batch(fleet_samples(hosts=60, round_number=1))
    assert response.json()["accepted"] == len(fleet_samples(hosts=60, round_number=1))
