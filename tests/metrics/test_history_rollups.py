"""Rollups: a series read from 5-minute or hourly rollups equals the same series read from raw samples."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from common.formats import iso_utc
from hosts.models import Host
from metrics.fields import METRIC_FIELDS
from metrics.history import series_read
from metrics.models import Rollup1h, Rollup5m
from metrics.retention import raw_cutoff
from metrics.rollups import FIVE_MINUTES, HOUR, RAW, rollups_update
from tests.conftest import ingest_at, sample_dict

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("open_twin")]

KEYS = tuple(f.key for f in METRIC_FIELDS)


def aligned_hours_ago(hours: int) -> datetime:
    now = timezone.now()
    return datetime.fromtimestamp((int(now.timestamp()) // 3600 - hours) * 3600, tz=UTC)


def messy_history(start: datetime, *, seed: int = 7) -> list[dict]:
    """2.5 hours at about 10 s: jittered stamps, counter resets, a 7-minute silence, counters missing for a while."""
    rng = random.Random(seed)
    samples, tx, rx = [], 10_000, 50_000
    t = 0.0
    while t < 9000:
        t += 10 + rng.uniform(-0.4, 0.4)
        if 3000 < t < 3420:  # silent for seven minutes
            continue
        tx += rng.randint(0, 5_000_000)
        rx += rng.randint(0, 1_000_000)
        if rng.random() < 0.01:  # a reboot: both counters start again
            tx, rx = rng.randint(0, 1000), rng.randint(0, 1000)
        sample = sample_dict(
            at=start + timedelta(seconds=t),
            cpu_load=round(rng.uniform(0, 100), 2),
            memory_used_percent=round(rng.uniform(20, 90), 2),
            load_average=round(rng.uniform(0, 8), 3),
            uptime_seconds=int(t),
            net_bytes_tx=tx,
            net_bytes_rx=rx,
        )
        if 6000 < t < 6600:  # an agent that stopped reporting counters for a while
            del sample["net_bytes_tx"], sample["net_bytes_rx"]
        samples.append(sample)
    return samples


@pytest.fixture
def history():
    start = aligned_hours_ago(4)
    ingest_at(messy_history(start))
    now = timezone.now()
    rollups_update(now=now, stamped_from=raw_cutoff(now=now))
    return start, Host.objects.get(hostname="titan-01").pk


def read(host_id, start, end, step, level):
    return series_read(host_id=host_id, start=start, end=end, step=step, keys=KEYS, now=timezone.now(), level=level)


def assert_same(series, expected):
    assert series.times == expected.times
    assert (series.start, series.end, series.step) == (expected.start, expected.end, expected.step)
    for key in KEYS:
        for part in ("avg", "min", "max"):
            got, want = series.values[key][part], expected.values[key][part]
            assert [v is None for v in got] == [v is None for v in want], (key, part)
            assert [v for v in got if v is not None] == pytest.approx(
                [v for v in want if v is not None], rel=1e-9, abs=1e-9
            ), (key, part)


@pytest.mark.parametrize("step", [300, 900, 1800])
def test_five_minute_rollups_and_raw_samples_agree_on_a_range_both_cover(history, step):
    start, host_id = history
    end = start + timedelta(hours=3)
    from_rollups = read(host_id, start, end, step, FIVE_MINUTES)
    assert len(from_rollups.times) > 5
    assert_same(from_rollups, read(host_id, start, end, step, RAW))


def test_hourly_rollups_agree_with_five_minute_rollups_and_with_raw_samples(history):
    start, host_id = history
    end = start + timedelta(hours=3)
    hourly = read(host_id, start, end, 3600, HOUR)
    assert len(hourly.times) == 3
    assert_same(hourly, read(host_id, start, end, 3600, FIVE_MINUTES))
    assert_same(hourly, read(host_id, start, end, 3600, RAW))


def test_rates_from_rollups_stay_non_negative_across_resets(history):
    start, host_id = history
    series = read(host_id, start, start + timedelta(hours=3), 300, FIVE_MINUTES)
    for key in ("netBytesTx", "netBytesRx"):
        assert all(v >= 0 for v in series.values[key]["min"] if v is not None)
        # Nothing above the largest rise the history can make in 10 s (5 MB in about 9.6 s).
        assert all(v < 5_000_000 / 9.5 for v in series.values[key]["max"] if v is not None)


def test_a_late_sample_is_folded_into_its_bucket_at_the_next_run(history):
    start, host_id = history
    late = start + timedelta(minutes=61, seconds=3)
    ingest_at([sample_dict(at=late, cpu_load=99.0, net_bytes_tx=None, net_bytes_rx=None)])
    now = timezone.now() + timedelta(seconds=61)
    rollups_update(now=now, stamped_from=raw_cutoff(now=now))
    end = start + timedelta(hours=3)
    assert_same(read(host_id, start, end, 300, FIVE_MINUTES), read(host_id, start, end, 300, RAW))
    bucket = Rollup5m.objects.get(host_id=host_id, bucket=start + timedelta(minutes=60))
    assert bucket.cpu_load_max == 99.0


def test_running_the_rollups_again_changes_nothing(history):
    _, host_id = history

    def rows():
        return [
            list(model.objects.filter(host_id=host_id).order_by("bucket").values_list())
            for model in (Rollup5m, Rollup1h)
        ]

    before = rows()
    now = timezone.now() + timedelta(minutes=5)
    rollups_update(now=now, stamped_from=raw_cutoff(now=now))
    assert rows() == before


def test_a_run_catches_up_slice_by_slice_and_says_what_is_left(open_twin):
    start = aligned_hours_ago(6)
    received = start
    for hour in range(4):
        received = start + timedelta(hours=hour, minutes=5)
        ingest_at([sample_dict(at=start + timedelta(hours=hour))], received_at=received)
    now = start + timedelta(hours=4)
    first = rollups_update(now=now, stamped_from=raw_cutoff(now=now), budget_seconds=0)
    assert "left for the next run" in first
    assert Rollup5m.objects.count() == 1
    second = rollups_update(now=now, stamped_from=raw_cutoff(now=now), budget_seconds=None)
    assert "left" not in second
    assert Rollup5m.objects.count() == 4 and Rollup1h.objects.count() == 4


def test_samples_older_than_the_raw_retention_leave_the_rollups_alone(open_twin):
    old = aligned_hours_ago(24 * 30)
    ingest_at([sample_dict(at=old)])
    now = timezone.now()
    rollups_update(now=now, stamped_from=raw_cutoff(now=now))
    assert not Rollup5m.objects.exists()


def test_the_series_api_serves_rollups_and_the_newest_raw_samples_in_one_answer(client, history):
    start, _ = history
    fresh = timezone.now() - timedelta(seconds=20)
    ingest_at([sample_dict(at=fresh, cpu_load=77.0)])  # after the rollups ran
    response = client.get(
        "/api/hosts/titan-01/metrics",
        {"from": iso_utc(start), "to": iso_utc(timezone.now()), "step": 600, "fields": "cpuLoad"},
    )
    body = response.json()
    assert body["resolution"] == "5m"
    assert body["series"]["cpuLoad"]["max"][-1] == 77.0
