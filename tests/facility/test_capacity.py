"""``GET /api/capacity``: the racks a server fits (contiguous units, power after failover), best first, with why."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from facility.placement import Occupant
from facility.power import RackState, capacity_rank
from facility.services import mount_place
from tests.facility.factories import feeds, floor_rack, host


@pytest.fixture
def reader_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("reader", password="a-long-password-1"))
    return client


def capacity(client, **params):
    return client.get("/api/capacity", params)


@pytest.mark.django_db
def test_a_server_fits_the_rack_with_room_and_power_and_the_answer_says_why(reader_client):
    roomy, full = floor_rack("R1", height_u=10), floor_rack("R2", height_u=4)
    feeds(roomy, a=3000, b=3000)
    feeds(full, a=3000, b=3000)
    mount_place(host=host("a"), rack=roomy, unit=1, height_u=2, nameplate_watts=500)
    mount_place(host=host("b"), rack=full, unit=1, height_u=3, nameplate_watts=500)
    body = capacity(reader_client, u=2, watts=800).json()
    assert (body["racksChecked"], body["racksFitting"]) == (2, 1)
    (fit,) = body["racks"]
    assert (fit["rack"], fit["firstUnit"], fit["freeUnits"], fit["headroomWatts"]) == ("R1", 3, 8, 1700.0)
    assert fit["reasons"][0].startswith("U3-U4 free")
    assert body["refused"] == {"no 2 contiguous free units": 1}


@pytest.mark.django_db
def test_power_after_failover_decides_and_the_racks_come_best_first(reader_client):
    weak, strong, single = floor_rack("W", order=0), floor_rack("S", order=1), floor_rack("X", order=2)
    feeds(weak, a=5000, b=1000)  # feed B alone could not carry 800 W more than its 500 W load
    feeds(strong, a=4000, b=4000)
    from facility.models import PowerFeed

    PowerFeed.objects.create(rack=single, side="A", capacity_watts=9000)
    mount_place(host=host("w1"), rack=weak, unit=1, nameplate_watts=500)
    body = capacity(reader_client, u=1, watts=800).json()
    assert [r["rack"] for r in body["racks"]] == ["S"]
    assert body["refused"] == {"power after failover": 1, "no feed B recorded": 1}
    assert capacity(reader_client, u=1, watts=400).json()["racks"][0]["rack"] == "S"
    assert [r["rack"] for r in capacity(reader_client, u=1, watts=400).json()["racks"]] == ["S", "W"]


@pytest.mark.django_db
def test_site_and_room_narrow_the_racks(reader_client):
    feeds(floor_rack("R1", site="S1"))
    feeds(floor_rack("R2", site="S2", room="H9"))
    assert [r["rack"] for r in capacity(reader_client, u=1, watts=100, site="S2").json()["racks"]] == ["R2"]
    assert [r["rack"] for r in capacity(reader_client, u=1, watts=100, room="H1").json()["racks"]] == ["R1"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"watts": 800}, "u"),
        ({"u": 2}, "watts"),
        ({"u": 0, "watts": 800}, "u"),
        ({"u": "two", "watts": 800}, "u"),
        ({"u": 2, "watts": -1}, "watts"),
        ({"u": 2, "watts": 800, "site": "nowhere"}, "site"),
        ({"u": 2, "watts": 800, "room": "x" * 65}, "room"),
        ({"u": 2, "watts": 800, "limit": 0}, "limit"),
    ],
)
def test_bad_parameters_are_a_400_naming_the_parameter(reader_client, params, parameter):
    response = capacity(reader_client, **params)
    assert response.status_code == 400
    assert response.json()["parameter"] == parameter


@pytest.mark.django_db
def test_the_capacity_question_needs_a_reader(client):
    assert capacity(client, u=1, watts=1).status_code in (401, 403)


# The reference: every unit tried, every occupant compared, the failover case spelt out.
def brute_force(racks: list[RackState], *, u: int, watts: float) -> dict[str, tuple[int, float]]:
    answer = {}
    for rack in racks:
        taken = {n for o in rack.occupants for n in range(o.unit, o.unit + o.height_u)}
        first = next((s for s in range(1, rack.height_u - u + 2) if not any(n in taken for n in range(s, s + u))), None)
        if first is None or "A" not in rack.feeds or "B" not in rack.feeds:
            continue
        after_a_fails = rack.feeds["B"] - rack.planning_watts - watts
        after_b_fails = rack.feeds["A"] - rack.planning_watts - watts
        if after_a_fails >= 0 and after_b_fails >= 0:
            answer[rack.name] = (first, round(min(after_a_fails, after_b_fails), 1))
    return answer


@st.composite
def racks_drawn(draw: st.DrawFn) -> list[RackState]:
    racks = []
    for i in range(draw(st.integers(1, 6))):
        height = draw(st.integers(4, 20))
        occupants, unit = [], 1
        while unit <= height:
            size = draw(st.integers(1, 4))
            if draw(st.booleans()) and unit + size - 1 <= height:
                occupants.append(Occupant(f"h{i}-{unit}", unit, size))
            unit += size
        sides = draw(st.sampled_from([("A", "B"), ("A",), ()]))
        feeds_ = {side: float(draw(st.integers(0, 5000))) for side in sides}
        racks.append(
            RackState(
                name=f"R{i}", site="S", room="H", row="A", height_u=height, feeds=feeds_,
                occupants=tuple(occupants), planning_watts=float(draw(st.integers(0, 3000))),
            )
        )  # fmt: skip
    return racks


@given(racks=racks_drawn(), u=st.integers(1, 6), watts=st.integers(0, 3000))
def test_capacity_answers_agree_with_a_brute_force_reference(racks, u, watts):
    fits, refused = capacity_rank(racks, u=u, watts=watts)
    assert {f["rack"]: (f["firstUnit"], f["headroomWatts"]) for f in fits} == brute_force(racks, u=u, watts=watts)
    # Every rack that does not fit is refused for at least one reason.
    assert sum(refused.values()) >= len(racks) - len(fits)
    headrooms = [f["headroomWatts"] for f in fits]
    assert headrooms == sorted(headrooms, reverse=True)  # best first
