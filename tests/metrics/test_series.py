"""Labelled metrics in a batch: their shape, their series, the first report's type and unit, the cardinality limits."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from metrics.models import Sample, Series, SeriesCount, SeriesSample
from metrics.retention import SERIES_SAMPLES, history_prune, partitions_list, raw_cutoff, samples_partitioned
from metrics.series import LabelledReading, labelled_samples_store, series_key
from tests.conftest import ingest_at, sample_dict, seconds_ago

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("open_twin")]


def disk(mount: str = "/", value: float = 71.2, **extra) -> dict:
    return {"name": "disk_used_percent", "labels": {"mount": mount}, "value": value, **extra}


def test_a_sample_may_carry_labelled_metrics_beside_the_seeds_fields(post_batch):
    metrics = [disk(unit="percent"), {"name": "node_load1", "value": 0.5}, disk("/var", 12.0)]
    response = post_batch([sample_dict(metrics=metrics)])
    assert response.status_code == 202
    assert set(response.json()) == {"accepted", "receivedAt"}
    assert Sample.objects.get().cpu_load == 42.5
    series = {(s.name, tuple(s.labels.items())): s for s in Series.objects.all()}
    assert set(series) == {
        ("disk_used_percent", (("mount", "/"),)),
        ("disk_used_percent", (("mount", "/var"),)),
        ("node_load1", ()),
    }
    root = series[("disk_used_percent", (("mount", "/"),))]
    assert (root.kind, root.unit) == ("gauge", "percent")
    assert SeriesSample.objects.get(series=root).value == 71.2
    assert SeriesCount.objects.get().series == 3


def test_the_same_labels_in_another_order_are_the_same_series(post_batch):
    first = {"name": "node_disk_read_bytes_total", "labels": {"device": "sda", "job": "node"}, "value": 1.0}
    again = {"name": "node_disk_read_bytes_total", "labels": {"job": "node", "device": "sda"}, "value": 2.0}
    post_batch([sample_dict(at=seconds_ago(20), metrics=[first]), sample_dict(at=seconds_ago(10), metrics=[again])])
    assert Series.objects.count() == 1
    assert sorted(SeriesSample.objects.values_list("value", flat=True)) == [1.0, 2.0]


@pytest.mark.parametrize(
    ("metric", "fault"),
    [
        ({"name": "1disk", "value": 1.0}, "metrics[0].name"),
        ({"name": "disk", "labels": {"__name__": "x"}, "value": 1.0}, "metrics[0].labels"),
        ({"name": "disk", "labels": {"bad-label": "x"}, "value": 1.0}, "metrics[0].labels"),
        ({"name": "disk", "labels": {"mount": "x" * 129}, "value": 1.0}, "metrics[0].labels"),
        ({"name": "disk", "labels": {f"l{i}": "x" for i in range(17)}, "value": 1.0}, "metrics[0].labels"),
        ({"name": "disk", "value": 1.0, "type": "histogram"}, "metrics[0].type"),
        ({"name": "disk", "value": "high"}, "metrics[0].value"),
        ({"name": "disk", "value": 1.0, "colour": "red"}, "colour"),
        ({"name": "errors_total", "value": -1.0, "type": "counter"}, "a counter is never negative"),
    ],
)
def test_a_malformed_labelled_metric_refuses_its_sample_with_the_field_at_fault(post_batch, metric, fault):
    response = post_batch([sample_dict(metrics=[metric])])
    assert response.status_code == 400
    assert fault in response.json()["rejected"][0]["reason"]
    assert not Series.objects.exists()


def test_a_series_named_twice_in_one_sample_is_refused():
    response_reason = _reasons_of([sample_dict(metrics=[disk(), disk(value=3.0)])])
    assert "each series once per sample" in response_reason[0]
    assert 'disk_used_percent{mount="/"}' in response_reason[0]


def _reasons_of(samples: list[dict]) -> list[str]:
    import msgspec
    import orjson

    from metrics.services import samples_ingest

    result = samples_ingest(raw_samples=[msgspec.Raw(orjson.dumps(s)) for s in samples], received_at=timezone.now())
    return [r.reason for r in result.rejected]


def test_a_series_type_and_unit_are_fixed_by_its_first_report(post_batch):
    post_batch([sample_dict(at=seconds_ago(30), metrics=[disk(unit="percent")])])
    response = post_batch(
        [
            sample_dict(at=seconds_ago(20), metrics=[disk(type="counter"), {"name": "other", "value": 1.0}]),
            sample_dict(at=seconds_ago(10), metrics=[disk(unit="ratio", value=0.7)]),
        ]
    )
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 2
    refused = body["metricsRefused"]
    assert [(r["index"], r["metrics"]) for r in refused] == [(0, [0]), (1, [0])]
    assert "is a gauge since its first report" in refused[0]["reason"]
    assert "is in percent since its first report" in refused[1]["reason"]
    assert SeriesSample.objects.filter(series__name="disk_used_percent").count() == 1
    # The sample's other series and its fields are stored.
    assert SeriesSample.objects.filter(series__name="other").count() == 1
    assert Sample.objects.count() == 3


def test_a_reading_that_omits_type_and_unit_takes_the_series_own(post_batch):
    post_batch([sample_dict(at=seconds_ago(20), metrics=[disk(type="counter", unit="bytes", value=5.0)])])
    response = post_batch([sample_dict(at=seconds_ago(10), metrics=[disk(value=6.0)])])
    assert "metricsRefused" not in response.json()
    assert SeriesSample.objects.count() == 2


def test_a_retried_sample_stores_its_labelled_values_once(post_batch):
    sample = sample_dict(metrics=[disk()])
    post_batch([sample])
    response = post_batch([sample])
    assert response.json()["duplicates"] == 1
    assert SeriesSample.objects.count() == 1


def _flood(host: str, *, samples: int, per_sample: int, start: int, at) -> list[dict]:
    """Samples whose every labelled metric is a series never seen (a request id as a label)."""
    return [
        sample_dict(
            host,
            at=at + timedelta(seconds=i),
            metrics=[
                {"name": "http_requests", "labels": {"request_id": str(start + i * per_sample + j)}, "value": 1.0}
                for j in range(per_sample)
            ],
        )
        for i in range(samples)
    ]


def test_a_host_sending_100000_label_sets_is_capped_per_host_and_others_are_unaffected(post_batch, settings):
    settings.TWIN_SERIES_MAX_PER_HOST = 1_000
    at = timezone.now() - timedelta(hours=1)

    def other_batch(second: int):
        with CaptureQueriesContext(connection) as queries:
            response = post_batch([sample_dict("quiet-01", at=at + timedelta(seconds=second), metrics=[disk()])])
        assert response.status_code == 202
        assert "metricsRefused" not in response.json()
        return len(queries)

    other_batch(0)
    before = other_batch(1)
    sent = 0
    for batch in range(10):
        samples = _flood("noisy-01", samples=10, per_sample=1_000, start=sent, at=at + timedelta(seconds=batch * 10))
        response = post_batch(samples)
        sent += 10_000
        assert response.status_code == 202
        body = response.json()
        assert body["accepted"] == 10
        refused = body["metricsRefused"]
        assert all("TWIN_SERIES_MAX_PER_HOST" in r["reason"] for r in refused)
        refused_count = sum(len(r["metrics"]) for r in refused)
        assert refused_count == (9_000 if batch == 0 else 10_000)
        assert len(refused) == (9 if batch == 0 else 10)  # one entry per sample and reason
    assert sent == 100_000
    noisy = Series.objects.filter(host__hostname="noisy-01")
    assert noisy.count() == 1_000 == SeriesCount.objects.get(host__hostname="noisy-01").series
    # The capped host still reports the series it has.
    known = {"name": "http_requests", "labels": {"request_id": "0"}, "value": 2.0}
    response = post_batch([sample_dict("noisy-01", at=at + timedelta(seconds=500), metrics=[known])])
    assert "metricsRefused" not in response.json()
    # Another host's batch costs what it cost before the flood, and is stored whole.
    assert other_batch(2) == before
    assert SeriesSample.objects.filter(series__host__hostname="quiet-01").count() == 3


def test_new_series_beyond_the_total_are_refused_naming_the_limit(post_batch, settings):
    settings.TWIN_SERIES_MAX_TOTAL = 3
    post_batch([sample_dict("a-01", metrics=[disk("/"), disk("/var")])])
    response = post_batch([sample_dict("b-01", metrics=[disk("/"), disk("/var"), disk("/home")])])
    assert response.status_code == 202
    [refused] = response.json()["metricsRefused"]
    assert refused["metrics"] == [1, 2]
    assert "TWIN_SERIES_MAX_TOTAL" in refused["reason"] and "3" in refused["reason"]
    assert Series.objects.count() == 3


def test_the_service_stores_readings_from_any_source_and_says_which_it_refused(settings):
    settings.TWIN_SERIES_MAX_PER_HOST = 2
    ingest_at([sample_dict("src-01")])
    host_id = Sample.objects.get().host_id
    now = timezone.now()
    readings = [
        LabelledReading(host_id=host_id, timestamp=now, name="temp_celsius", labels={"sensor": str(i)}, value=40.0)
        for i in range(3)
    ]
    refused = labelled_samples_store(readings=readings, received_at=now)
    assert list(refused) == [2]
    assert "TWIN_SERIES_MAX_PER_HOST" in refused[2]
    assert Series.objects.filter(key=series_key("temp_celsius", {"sensor": "0"})).exists()


def test_labelled_values_age_out_with_the_raw_samples(post_batch):
    now = timezone.now()
    cutoff = raw_cutoff(now=now)
    ingest_at([sample_dict(at=cutoff - timedelta(hours=1), metrics=[disk(value=1.0)])])
    ingest_at([sample_dict(at=now - timedelta(minutes=1), metrics=[disk(value=2.0)])])
    if samples_partitioned(SERIES_SAMPLES):
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    report = history_prune(now=now)
    assert list(SeriesSample.objects.values_list("value", flat=True)) == [2.0]
    assert report.series_samples_deleted == 1
    assert "1 raw labelled value(s)" in report.sentence()


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="partitions are PostgreSQL's")
def test_the_series_history_is_partitioned_by_day_like_the_samples():
    assert samples_partitioned(SERIES_SAMPLES)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_partkeydef(%s::regclass)", [SeriesSample._meta.db_table])
        assert cursor.fetchone()[0] == 'RANGE ("timestamp")'
    assert timezone.now().date() in partitions_list(SERIES_SAMPLES)
