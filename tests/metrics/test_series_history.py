"""Labelled series over time: the listing, the values, and their rollups and retention by the hosts' own path."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from common.formats import iso_utc
from hosts.models import Host
from metrics.history import labelled_series_read, series_read
from metrics.jobs import metrics_rollups
from metrics.models import Series, SeriesRollup1h, SeriesRollup5m
from metrics.retention import history_prune
from metrics.rollups import FIVE_MINUTES, HOSTS, HOUR, RAW, SERIES, rollups_progress, rollups_update
from tests.conftest import ingest_at, sample_dict

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("open_twin")]

# Counter readings 10 s apart with a reset in the middle: rises of 100 and 100 over 20 s.
COUNTER_READINGS = (100.0, 200.0, 150.0, 250.0)
GAUGE_READINGS = (70.0, 72.0, 71.0, 75.0)


def _history(*, at, received_at=None):
    """Four samples 10 s apart from ``at``, each with a gauge and a counter labelled by device."""
    samples = [
        sample_dict(
            at=at + timedelta(seconds=10 * i),
            metrics=[
                {"name": "disk_used_percent", "labels": {"mount": "/"}, "value": gauge, "unit": "percent"},
                {"name": "disk_read_bytes", "labels": {"device": "sda"}, "value": counter, "type": "counter"},
            ],
        )
        for i, (gauge, counter) in enumerate(zip(GAUGE_READINGS, COUNTER_READINGS, strict=True))
    ]
    ingest_at(samples, received_at=received_at)
    return {s.name: s for s in Series.objects.all()}


def _aligned(moment, seconds=3600):
    return moment.replace(minute=0, second=0, microsecond=0) - timedelta(seconds=seconds)


def test_a_hosts_labelled_series_are_listed_with_their_type_and_unit(client):
    _history(at=timezone.now() - timedelta(minutes=5))
    body = client.get("/api/hosts/titan-01/series").json()
    assert body["hostname"] == "titan-01"
    assert [(s["name"], s["labels"], s["type"], s["unit"]) for s in body["series"]] == [
        ("disk_read_bytes", {"device": "sda"}, "counter", ""),
        ("disk_used_percent", {"mount": "/"}, "gauge", "percent"),
    ]
    only = client.get("/api/hosts/titan-01/series", {"name": "disk_used_percent"}).json()["series"]
    assert [s["name"] for s in only] == ["disk_used_percent"]
    assert client.get("/api/hosts/nobody/series").status_code == 404


def test_a_gauge_reads_as_avg_min_max_and_a_counter_as_reset_safe_rates(client):
    start = _aligned(timezone.now())
    series = _history(at=start)
    params = {"from": start.isoformat(), "to": (start + timedelta(minutes=1)).isoformat(), "step": 60}
    gauge = client.get(f"/api/hosts/titan-01/series/{series['disk_used_percent'].pk}", params).json()
    assert (gauge["type"], gauge["unit"], gauge["resolution"]) == ("gauge", "percent", "raw")
    assert gauge["values"] == {"avg": [72.0], "min": [70.0], "max": [75.0]}
    counter = client.get(f"/api/hosts/titan-01/series/{series['disk_read_bytes'].pk}", params).json()
    assert counter["values"] == {"avg": [10.0], "min": [10.0], "max": [10.0]}
    assert counter["times"] == [iso_utc(start)]


def test_a_series_of_another_host_or_none_is_not_found(client):
    series = _history(at=timezone.now() - timedelta(minutes=5))
    other = Host.objects.create(hostname="other-01")
    assert client.get(f"/api/hosts/{other.hostname}/series/{series['disk_read_bytes'].pk}").status_code == 404
    assert client.get("/api/hosts/titan-01/series/999999").status_code == 404
    assert client.get("/api/hosts/titan-01/series/1", {"from": "yesterday"}).status_code == 400


@pytest.mark.parametrize("level", [FIVE_MINUTES, HOUR])
def test_labelled_series_read_from_rollups_equal_the_raw_values(level):
    now = timezone.now()
    start = _aligned(now, seconds=3 * 3600)
    series = _history(at=start, received_at=start + timedelta(seconds=40))
    metrics_rollups(now)
    assert rollups_progress(SERIES) == now
    assert SeriesRollup5m.objects.count() == 2 and SeriesRollup1h.objects.count() == 2
    for s in series.values():
        reads = [
            labelled_series_read(
                series_id=s.pk, kind=s.kind, start=start, end=start + timedelta(hours=1), step=3600, now=now, level=at
            )
            for at in (RAW, level)
        ]
        assert reads[1].resolution == level.name
        assert reads[0].values == reads[1].values
        assert reads[0].times == reads[1].times


def test_the_hosts_rollups_and_the_series_rollups_keep_their_own_progress():
    now = timezone.now()
    _history(at=now - timedelta(minutes=30), received_at=now - timedelta(minutes=29))
    rollups_update(now=now, stamped_from=now - timedelta(days=1), history=SERIES)
    assert rollups_progress(SERIES) == now
    assert rollups_progress(HOSTS) is None
    # The hosts' series are untouched by the labelled ones' rollups.
    host = Host.objects.get(hostname="titan-01")
    read = series_read(host_id=host.pk, start=now - timedelta(hours=1), end=now, step=3600, keys=("cpuLoad",), now=now)
    assert set(read.values["cpuLoad"]["avg"]) == {42.5}


def test_labelled_rollups_age_out_with_the_hosts_rollups(settings):
    settings.TWIN_ROLLUP_RETENTION_DAYS = 90
    settings.TWIN_HOURLY_RETENTION_DAYS = 400
    now = timezone.now()
    series = _history(at=now - timedelta(minutes=5))["disk_used_percent"]
    for model, age in ((SeriesRollup5m, timedelta(days=91)), (SeriesRollup1h, timedelta(days=401))):
        for bucket in (now - age, now - timedelta(days=1)):
            model.objects.create(series=series, bucket=bucket, samples=1, first_at=bucket, last_at=bucket)
    report = history_prune(now=now)
    assert report.series_rollups_deleted == 2
    assert SeriesRollup5m.objects.count() == 1 and SeriesRollup1h.objects.count() == 1


def test_the_admin_lists_a_hosts_labelled_series_read_only(admin_client):
    _history(at=timezone.now() - timedelta(minutes=5))
    page = admin_client.get("/admin/metrics/series/", {"q": "titan-01"})
    assert page.status_code == 200
    assert b"disk_used_percent" in page.content and b"disk_read_bytes" in page.content
    assert admin_client.get("/admin/metrics/series/add/").status_code == 403
