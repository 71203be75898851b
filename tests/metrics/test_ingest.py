"""POST /api/metrics/batch: what is stored, what is refused, and why."""

from __future__ import annotations

import gzip
from datetime import timedelta

import orjson
import pytest
from django.utils import timezone

from hosts.models import Host, Link, Rack
from metrics.models import BatchReceipt, LatestMetrics, Sample
from tests.conftest import sample_dict, seconds_ago

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("open_twin")]


def test_the_seed_batch_is_accepted_and_stored(post_batch):
    response = post_batch([sample_dict()])
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 1
    assert body["receivedAt"].endswith("Z")
    assert set(body) == {"accepted", "receivedAt"}
    stored = Sample.objects.get()
    assert stored.host.hostname == "titan-01"
    assert (stored.cpu_load, stored.net_bytes_tx, stored.uptime_seconds) == (42.5, 1250000000, 7200)


def test_an_unknown_host_is_created_with_its_rack_position_and_uplink(post_batch):
    post_batch([sample_dict()])
    host = Host.objects.select_related("rack").get(hostname="titan-01")
    assert host.rack is not None and host.rack.name == "R1"
    assert (host.position_x, host.position_y, host.position_z) == (1.2, 0.4, -0.8)
    assert (host.agent_version, host.platform) == ("0.1.0-dev", "Linux-x86_64")
    assert Link.objects.filter(source__hostname="core-switch", target=host).exists()


def test_a_known_rack_is_linked_not_duplicated(post_batch):
    Rack.objects.create(name="R1")
    post_batch([sample_dict("a-1"), sample_dict("a-2")])
    assert Rack.objects.count() == 1
    assert Host.objects.filter(rack__name="R1").count() == 2


def test_agents_no_longer_move_a_host_an_admin_has_placed(post_batch):
    post_batch([sample_dict(at=seconds_ago(10))])
    Host.objects.filter(hostname="titan-01").update(placement_locked=True, position_x=9.0, rack=None)
    post_batch([sample_dict(rack="R9", position={"x": 5, "y": 5, "z": 5})])
    host = Host.objects.get(hostname="titan-01")
    assert (host.rack, host.position_x) == (None, 9.0)
    assert not Rack.objects.filter(name="R9").exists()


def test_an_admin_defined_link_is_not_replaced_by_an_uplink(post_batch):
    leaf = Host.objects.create(hostname="leaf-1", is_virtual=True)
    host = Host.objects.create(hostname="titan-01")
    Link.objects.create(source=leaf, target=host)
    post_batch([sample_dict()])
    assert list(Link.objects.filter(target=host).values_list("source__hostname", flat=True)) == ["leaf-1"]


def test_invalid_samples_are_refused_with_index_and_reason_while_valid_ones_are_stored(post_batch):
    response = post_batch([sample_dict("good-1"), sample_dict("bad", cpu_load=140), sample_dict("good-2")])
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 2
    assert len(body["rejected"]) == 1
    assert body["rejected"][0]["index"] == 1
    assert "cpu_load" in body["rejected"][0]["reason"]
    assert sorted(Sample.objects.values_list("host__hostname", flat=True)) == ["good-1", "good-2"]


def test_a_batch_with_no_valid_sample_is_a_400_with_the_same_report(post_batch):
    response = post_batch([sample_dict(cpu_load=-1), sample_dict(hostname="not valid")])
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "no_valid_samples"
    assert body["accepted"] == 0
    assert [r["index"] for r in body["rejected"]] == [0, 1]
    assert not Sample.objects.exists()
    assert not Host.objects.exclude(hostname="core-switch").exists()


def test_an_empty_batch_is_a_400_as_no_samples_is(post_batch):
    # The ingest issue's rule: no samples -> 400 (docs/api.md).
    response = post_batch([])
    assert response.status_code == 400
    assert response.json() == {"error": "malformed_batch", "detail": "The batch has no samples; send at least one."}
    assert not BatchReceipt.objects.exists()


def test_an_empty_signed_batch_is_a_400_and_its_sequence_stays_free(make_agent):
    agent = make_agent("titan-01")
    assert agent.post([]).status_code == 400
    agent.sequence -= 1
    assert agent.post().status_code == 202


@pytest.mark.parametrize(
    "body",
    [b"{not json", b'{"samples": [', b"[]", b'{"samples": {}}', b'{"other": []}', b" ", b'"samples"'],
    ids=["invalid", "truncated", "array", "samples-not-a-list", "no-samples", "blank", "string"],
)
def test_a_body_that_is_not_a_batch_is_a_json_400(post_batch, body):
    response = post_batch(body=body)
    assert response.status_code == 400
    assert response.json()["error"] == "malformed_batch"


def test_a_wrong_content_type_is_a_json_415(client):
    response = client.post("/api/metrics/batch", data="samples=1", content_type="text/plain")
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"


def test_a_content_type_with_charset_is_accepted(client):
    body = orjson.dumps({"samples": [sample_dict()]})
    response = client.post("/api/metrics/batch", data=body, content_type="application/json; charset=utf-8")
    assert response.status_code == 202


def test_other_methods_get_a_json_405(client):
    response = client.get("/api/metrics/batch")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


def test_unknown_paths_get_a_json_404(client):
    response = client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_a_retried_batch_stores_nothing_twice(post_batch):
    samples = [sample_dict("a-1"), sample_dict("a-2")]
    assert post_batch(samples).json()["accepted"] == 2
    again = post_batch(samples)
    assert again.status_code == 202
    assert again.json()["accepted"] == 0
    assert again.json()["duplicates"] == 2
    assert Sample.objects.count() == 2


def test_the_same_sample_twice_in_one_batch_is_stored_once(post_batch):
    sample = sample_dict()
    body = post_batch([sample, sample]).json()
    assert body["accepted"] == 1
    assert body["rejected"][0]["index"] == 1
    assert "duplicate" in body["rejected"][0]["reason"]
    assert Sample.objects.count() == 1


def test_hostnames_differing_only_in_case_are_one_host(post_batch):
    post_batch([sample_dict("Titan-01", at=seconds_ago(5)), sample_dict("titan-01")])
    assert Host.objects.filter(hostname="titan-01").count() == 1
    assert Sample.objects.count() == 2


def test_latest_values_follow_the_newest_sample(post_batch):
    post_batch([sample_dict(at=seconds_ago(20), cpu_load=10), sample_dict(at=seconds_ago(10), cpu_load=20)])
    latest = LatestMetrics.objects.get(host__hostname="titan-01")
    assert latest.cpu_load == 20


def test_an_out_of_order_batch_never_moves_latest_values_backwards(post_batch):
    post_batch([sample_dict(at=seconds_ago(5), cpu_load=50, agent_version="2.0")])
    post_batch([sample_dict(at=seconds_ago(60), cpu_load=5, agent_version="1.0")])
    latest = LatestMetrics.objects.get(host__hostname="titan-01")
    assert latest.cpu_load == 50
    assert Host.objects.get(hostname="titan-01").agent_version == "2.0"
    assert Sample.objects.count() == 2


def test_a_late_sample_still_counts_as_contact(post_batch):
    post_batch([sample_dict(at=seconds_ago(5))])
    before = LatestMetrics.objects.get().last_seen
    post_batch([sample_dict(at=seconds_ago(60))])
    assert LatestMetrics.objects.get().last_seen > before


def test_the_last_two_counter_readings_are_kept_for_throughput(post_batch):
    now = timezone.now()
    post_batch([sample_dict(at=now - timedelta(seconds=20), net_bytes_tx=1000, net_bytes_rx=2000)])
    post_batch([sample_dict(at=now - timedelta(seconds=10), net_bytes_tx=3000, net_bytes_rx=5000)])
    latest = LatestMetrics.objects.get()
    assert (latest.prev_net_bytes_tx, latest.prev_net_bytes_rx) == (1000, 2000)
    assert (latest.net_bytes_tx, latest.net_bytes_rx) == (3000, 5000)
    assert latest.sample_time - latest.prev_sample_time == timedelta(seconds=10)


def test_a_sample_from_the_future_beyond_the_skew_is_refused(post_batch):
    response = post_batch([sample_dict(at=timezone.now() + timedelta(minutes=10))])
    assert response.status_code == 400
    assert "future" in response.json()["rejected"][0]["reason"]


def test_a_gzip_body_without_content_encoding_is_not_json(post_batch):
    response = post_batch(body=gzip.compress(orjson.dumps({"samples": [sample_dict()]})))
    assert response.status_code == 400


def test_ingest_costs_the_same_number_of_queries_for_one_host_or_fifty(post_batch, django_assert_max_num_queries):
    post_batch([sample_dict(f"warm-{i}", at=seconds_ago(30)) for i in range(50)])
    with django_assert_max_num_queries(20):
        post_batch([sample_dict(f"warm-{i}") for i in range(50)])


@pytest.mark.parametrize("field", ["rack", "platform", "agent_version"])
def test_control_characters_in_names_are_refused_not_a_500(post_batch, field):
    response = post_batch([sample_dict(**{field: "R\u00001"})])
    assert response.status_code == 400
    assert field in response.json()["rejected"][0]["reason"]


def test_a_sample_far_in_the_past_joins_the_history_without_moving_the_latest(post_batch):
    post_batch([sample_dict(cpu_load=50)])
    response = post_batch([sample_dict(timestamp="1999-12-31T23:59:59Z", cpu_load=1)])
    assert response.status_code == 202 and response.json()["accepted"] == 1
    assert LatestMetrics.objects.get().cpu_load == 50
    assert Sample.objects.count() == 2


def test_one_host_twice_out_of_order_in_a_batch_keeps_the_newest_as_latest(post_batch):
    newer, older = seconds_ago(5), seconds_ago(50)
    post_batch([sample_dict(at=newer, cpu_load=70), sample_dict(at=older, cpu_load=7)])
    assert LatestMetrics.objects.get().cpu_load == 70
    assert Sample.objects.count() == 2


def test_nan_written_as_a_json_extension_makes_the_body_invalid_json(post_batch):
    body = orjson.dumps({"samples": [sample_dict()]}).replace(b'"cpu_load":42.5', b'"cpu_load":NaN')
    response = post_batch(body=body)
    assert (response.status_code, response.json()["error"]) == (400, "malformed_batch")
    assert not Sample.objects.exists()


def test_a_retried_large_batch_stores_nothing_twice(post_batch):
    now = timezone.now()
    samples = [sample_dict(at=now - timedelta(seconds=i)) for i in range(100)]
    assert post_batch(samples).json()["accepted"] == 100
    again = post_batch([*samples, sample_dict(at=now - timedelta(days=3))]).json()
    assert (again["accepted"], again["duplicates"]) == (1, 100)
    assert Sample.objects.count() == 101


@pytest.mark.parametrize("size", [1, 15, 16, 40])
def test_every_value_and_offset_survives_either_insert_path(post_batch, size):
    # Small batches are INSERTed, larger ones COPied on PostgreSQL; both keep
    # each value and the instant of a timestamp written with any offset.
    base = timezone.now().replace(microsecond=123000) - timedelta(hours=1)
    samples = [
        sample_dict(
            timestamp=(base + timedelta(seconds=i)).astimezone(timezone.get_fixed_timezone(120)).isoformat(),
            cpu_load=float(i),
            uptime_seconds=1000 + i,
            net_bytes_tx=2**63 - 1 - i,
            net_bytes_rx=None if i % 2 else i,
        )
        for i in range(size)
    ]
    assert post_batch(samples).json()["accepted"] == size
    stored = list(
        Sample.objects.order_by("timestamp").values_list(
            "timestamp", "cpu_load", "uptime_seconds", "net_bytes_tx", "net_bytes_rx"
        )
    )
    assert stored == [
        (base + timedelta(seconds=i), float(i), 1000 + i, 2**63 - 1 - i, None if i % 2 else i) for i in range(size)
    ]
    latest = LatestMetrics.objects.get()
    assert (latest.sample_time, latest.cpu_load) == (base + timedelta(seconds=size - 1), float(size - 1))
    again = post_batch(samples).json()
    assert (again["accepted"], again["duplicates"]) == (0, size)


@pytest.mark.parametrize("timestamp", ["1969-12-31T23:59:59Z", "0001-01-01T00:00:00.0+04:00"])
def test_a_timestamp_before_1970_is_refused_with_a_reason_not_a_500(post_batch, timestamp):
    # The second has no UTC form at all: the schema fuzzer found it as a 500.
    response = post_batch([sample_dict(timestamp=timestamp), sample_dict("titan-02")])
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 1
    assert body["rejected"][0]["index"] == 0 and "1970" in body["rejected"][0]["reason"]
    assert Sample.objects.get().host.hostname == "titan-02"


def test_a_batch_naming_thousands_of_hosts_keeps_each_ones_latest_values(post_batch):
    # One statement per table would pass SQLite's and PostgreSQL's parameter limits
    # (13 a host for the latest values): the writes are split to fit.
    samples = [sample_dict(f"poll-{i:05d}") for i in range(3000)]
    for s in samples:
        del s["rack"], s["position"]
    assert post_batch(samples).json()["accepted"] == 3000
    assert LatestMetrics.objects.count() == 3000
    assert Sample.objects.count() == 3000
