"""Status history: every change recorded once, timed by the facts, the clock's alone included."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone

from common.events import EVENTS_GROUP, EventType
from common.formats import iso_utc
from hosts.models import Host
from jobs.services import job_run_now, jobs_ensure
from tests.conftest import ingest_at, sample_dict
from twin.models import HostStatusEvent
from twin.services import status_events_prune, status_transitions_record

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("open_twin")]


def changes(hostname: str) -> list[tuple]:
    return [
        (e.from_status or None, e.to_status, e.cause, e.at)
        for e in HostStatusEvent.objects.filter(host__hostname=hostname).order_by("at", "id")
    ]


@pytest.fixture
def r0():
    """titan-01's one sample arrives at R0; the recorder first looks a second later."""
    arrived = timezone.now() - timedelta(hours=1)
    ingest_at([sample_dict(at=arrived)], received_at=arrived)
    status_transitions_record(now=arrived + timedelta(seconds=1))
    return arrived


def test_a_host_that_goes_silent_turns_stale_then_offline_each_recorded_once_at_its_time(r0):
    for seconds in (20, 31, 32, 60, 121, 122, 500):
        status_transitions_record(now=r0 + timedelta(seconds=seconds))
    assert changes("titan-01") == [
        (None, "online", "inventory", r0 + timedelta(seconds=1)),
        ("online", "stale", "silence", r0 + timedelta(seconds=30)),
        ("stale", "offline", "silence", r0 + timedelta(seconds=120)),
    ]


def test_the_core_switch_follows_its_liveliest_neighbour_with_its_time_and_cause(r0):
    status_transitions_record(now=r0 + timedelta(seconds=200))
    assert [c[:3] for c in changes("core-switch")] == [
        (None, "online", "inventory"),
        ("online", "stale", "silence"),
        ("stale", "offline", "silence"),
    ]
    assert [c[3] for c in changes("core-switch")][1:] == [r0 + timedelta(seconds=30), r0 + timedelta(seconds=120)]


def test_a_recorder_that_missed_the_stale_state_still_records_both_changes(r0):
    status_transitions_record(now=r0 + timedelta(seconds=600))
    assert changes("titan-01")[1:] == [
        ("online", "stale", "silence", r0 + timedelta(seconds=30)),
        ("stale", "offline", "silence", r0 + timedelta(seconds=120)),
    ]


def test_a_host_that_comes_back_is_online_from_its_first_new_sample(r0):
    status_transitions_record(now=r0 + timedelta(seconds=200))
    back = r0 + timedelta(seconds=500)
    ingest_at([sample_dict(at=back)], received_at=back)
    ingest_at([sample_dict(at=back + timedelta(seconds=1))], received_at=back + timedelta(milliseconds=300))
    status_transitions_record(now=back + timedelta(milliseconds=500))
    assert changes("titan-01")[-1] == ("offline", "online", "data", back)
    assert changes("core-switch")[-1] == ("offline", "online", "data", back)


def test_data_and_then_silence_between_two_looks_are_both_recorded(r0):
    status_transitions_record(now=r0 + timedelta(seconds=200))
    back = r0 + timedelta(seconds=500)
    ingest_at([sample_dict(at=back)], received_at=back)
    status_transitions_record(now=back + timedelta(seconds=45))
    assert changes("titan-01")[-2:] == [
        ("offline", "online", "data", back),
        ("online", "stale", "silence", back + timedelta(seconds=30)),
    ]


def test_a_host_that_never_reported_is_unknown_until_its_first_sample():
    Host.objects.create(hostname="spare-01")
    start = timezone.now() - timedelta(minutes=10)
    status_transitions_record(now=start)
    arrived = start + timedelta(seconds=5)
    ingest_at([sample_dict("spare-01", at=arrived)], received_at=arrived)
    status_transitions_record(now=arrived + timedelta(seconds=1))
    assert [c[:3] for c in changes("spare-01")] == [(None, "unknown", "inventory"), ("unknown", "online", "data")]
    assert changes("spare-01")[-1][3] == arrived


def test_a_host_created_by_its_first_sample_joins_online_from_that_sample(r0):
    arrived = r0 + timedelta(seconds=5)
    ingest_at([sample_dict("fresh-01", at=arrived)], received_at=arrived)
    status_transitions_record(now=r0 + timedelta(seconds=50))
    assert changes("fresh-01") == [
        (None, "online", "inventory", arrived),
        ("online", "stale", "silence", arrived + timedelta(seconds=30)),
    ]


def test_a_host_an_admin_adds_joins_unknown_when_created(r0):
    spare = Host.objects.create(hostname="spare-02")
    status_transitions_record(now=r0 + timedelta(seconds=2))
    assert changes("spare-02") == [(None, "unknown", "inventory", spare.created_at)]


def test_changed_thresholds_are_recorded_as_an_inventory_change(r0, settings):
    status_transitions_record(now=r0 + timedelta(seconds=40))
    settings.TWIN_STALE_AFTER_SECONDS = 60
    status_transitions_record(now=r0 + timedelta(seconds=41))
    assert changes("titan-01")[-1] == ("stale", "online", "inventory", r0 + timedelta(seconds=41))


def test_each_change_is_announced_after_commit_as_a_host_status_event(r0, django_capture_on_commit_callbacks):
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(EVENTS_GROUP, channel)
    with django_capture_on_commit_callbacks(execute=True):
        status_transitions_record(now=r0 + timedelta(seconds=31))
    message = async_to_sync(layer.receive)(channel)
    events = [e for e in message["events"] if e["type"] == EventType.HOST_STATUS]
    assert {
        "type": "host.status",
        "audience": "readers",
        "payload": {
            "hostname": "titan-01",
            "from": "online",
            "to": "stale",
            "at": iso_utc(r0 + timedelta(seconds=30)),
            "cause": "silence",
        },
    } in events
    assert len(events) == 2  # titan-01 and the core switch, in one message


def test_the_events_api_lists_a_hosts_changes_oldest_first(client, r0):
    status_transitions_record(now=r0 + timedelta(seconds=200))
    body = client.get("/api/hosts/titan-01/events").json()
    assert body == {
        "hostname": "titan-01",
        "events": [
            {"at": iso_utc(r0 + timedelta(seconds=1)), "from": None, "to": "online", "cause": "inventory"},
            {"at": iso_utc(r0 + timedelta(seconds=30)), "from": "online", "to": "stale", "cause": "silence"},
            {"at": iso_utc(r0 + timedelta(seconds=120)), "from": "stale", "to": "offline", "cause": "silence"},
        ],
    }
    newest = client.get("/api/hosts/titan-01/events", {"limit": 1}).json()["events"]
    assert [e["to"] for e in newest] == ["offline"]
    window = {"from": iso_utc(r0 + timedelta(seconds=10)), "to": iso_utc(r0 + timedelta(seconds=100))}
    assert [e["to"] for e in client.get("/api/hosts/titan-01/events", window).json()["events"]] == ["stale"]


@pytest.mark.parametrize(
    ("params", "parameter"),
    [({"limit": "0"}, "limit"), ({"limit": "lots"}, "limit"), ({"from": "soon"}, "from"), ({"to": "x"}, "to")],
)
def test_bad_event_parameters_are_a_400_that_names_them(client, r0, params, parameter):
    response = client.get("/api/hosts/titan-01/events", params)
    assert response.status_code == 400 and response.json()["parameter"] == parameter


def test_events_of_an_unknown_host_are_a_404(client):
    assert client.get("/api/hosts/nobody/events").status_code == 404


def test_the_recorder_runs_on_its_own_as_a_job(r0):
    jobs_ensure(now=timezone.now())
    run = job_run_now(name="twin.status_history")
    assert run is not None and run.ok and "status change" in run.result
    assert changes("titan-01")[-1][1] == "offline"


def test_status_changes_older_than_the_hourly_retention_are_pruned(r0, settings):
    settings.TWIN_HOURLY_RETENTION_DAYS = 400
    HostStatusEvent.objects.filter(host__hostname="titan-01").update(at=timezone.now() - timedelta(days=401))
    assert status_events_prune(now=timezone.now()) == 1
    assert not changes("titan-01")
