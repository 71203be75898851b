"""The series API: buckets computed by hand, counters as reset-safe rates, strict parameters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from common.formats import iso_utc
from metrics.history import series_read
from metrics.rollups import RAW
from tests.conftest import ingest_at, sample_dict

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("open_twin")]


def hour_ago_aligned() -> datetime:
    """A whole hour in the recent past: buckets of any step up to an hour start there."""
    now = timezone.now()
    return datetime.fromtimestamp((int(now.timestamp()) // 3600 - 2) * 3600, tz=UTC)


# Seconds after the start, cpu, counters sent and received. The 60-119 s bucket is
# empty; the sent counter resets (5000 -> 100) at 130 s.
READINGS = [
    (0, 10.0, 1000, 0),
    (10, 20.0, 2000, 100),
    (20, 60.0, 4000, 200),
    (120, 30.0, 5000, 300),
    (130, 40.0, 100, 400),
    (140, 50.0, 600, 500),
]


@pytest.fixture
def base():
    start = hour_ago_aligned()
    ingest_at(
        [
            sample_dict(
                at=start + timedelta(seconds=s), cpu_load=cpu, net_bytes_tx=tx, net_bytes_rx=rx, uptime_seconds=s
            )
            for s, cpu, tx, rx in READINGS
        ]
    )
    return start


def get_series(client, **params):
    response = client.get("/api/hosts/titan-01/metrics", params)
    assert response.status_code == 200, response.content
    return response.json()


def test_buckets_match_a_hand_computation_with_an_empty_bucket_left_out(client, base):
    body = get_series(client, **{"from": iso_utc(base), "to": iso_utc(base + timedelta(seconds=180)), "step": 60})
    assert body["resolution"] == "raw" and body["stepSeconds"] == 60
    assert body["times"] == [iso_utc(base), iso_utc(base + timedelta(seconds=120))]
    assert body["series"]["cpuLoad"] == {"avg": [30.0, 40.0], "min": [10.0, 30.0], "max": [60.0, 50.0]}
    assert body["series"]["uptimeSeconds"] == {"avg": [10.0, 130.0], "min": [0, 120], "max": [20, 140]}


def test_a_counter_is_a_rate_whose_reset_counts_for_nothing(client, base):
    body = get_series(client, **{"from": iso_utc(base), "to": iso_utc(base + timedelta(seconds=180)), "step": 60})
    sent = body["series"]["netBytesTx"]
    # Bucket 0: 1000 B in 10 s, then 2000 B in 10 s. Bucket 2: 1000 B over the 100 s
    # gap from the last reading before it, the reset pair skipped, then 500 B in 10 s.
    assert sent["avg"] == pytest.approx([3000 / 20, 1500 / 110])
    assert sent["min"] == pytest.approx([100.0, 10.0])
    assert sent["max"] == pytest.approx([200.0, 50.0])
    assert min(sent["min"]) >= 0
    received = body["series"]["netBytesRx"]
    assert received["avg"] == pytest.approx([10.0, 300 / 120])
    assert received["min"] == pytest.approx([10.0, 1.0]) and received["max"] == pytest.approx([10.0, 10.0])


def test_a_bucket_whose_only_pair_is_a_reset_has_no_rate(client):
    start = hour_ago_aligned()
    ingest_at([sample_dict(at=start, net_bytes_tx=900), sample_dict(at=start + timedelta(seconds=10), net_bytes_tx=5)])
    body = get_series(client, **{"from": iso_utc(start), "to": iso_utc(start + timedelta(seconds=60)), "step": 60})
    assert body["series"]["netBytesTx"] == {"avg": [None], "min": [None], "max": [None]}


def test_the_range_is_widened_to_whole_steps(client, base):
    body = get_series(
        client,
        **{"from": iso_utc(base + timedelta(seconds=5)), "to": iso_utc(base + timedelta(seconds=125)), "step": 60},
    )
    assert body["from"] == iso_utc(base) and body["to"] == iso_utc(base + timedelta(seconds=180))
    assert body["series"]["cpuLoad"]["avg"] == [30.0, 40.0]


def test_fields_choose_the_metrics_and_the_default_is_every_metric(client, base):
    window = {"from": iso_utc(base), "to": iso_utc(base + timedelta(seconds=180))}
    assert list(get_series(client, **window, fields="netBytesRx,cpuLoad")["series"]) == ["netBytesRx", "cpuLoad"]
    assert list(get_series(client, **window)["series"]) == [
        "cpuLoad",
        "memoryUsedPercent",
        "loadAverage",
        "uptimeSeconds",
        "netBytesTx",
        "netBytesRx",
        "powerWatts",
        "inletTempCelsius",
    ]


def test_by_default_the_last_hour_comes_in_about_a_thousand_points(client, post_batch):
    post_batch([sample_dict(at=timezone.now() - timedelta(seconds=30))])
    body = get_series(client)
    assert body["stepSeconds"] == 4 and body["resolution"] == "raw"
    span = datetime.fromisoformat(body["to"]) - datetime.fromisoformat(body["from"])
    assert timedelta(hours=1) <= span <= timedelta(hours=1, seconds=8)
    assert len(body["times"]) == 1


def test_a_long_range_is_read_from_rollups_with_the_step_rounded_to_whole_buckets(client, base):
    body = get_series(client, **{"from": iso_utc(base - timedelta(days=5)), "to": iso_utc(base)})
    assert body["resolution"] == "5m" and body["stepSeconds"] % 300 == 0
    assert (
        500
        <= (datetime.fromisoformat(body["to"]) - datetime.fromisoformat(body["from"])).total_seconds()
        / body["stepSeconds"]
        <= 1000
    )


def test_samples_not_yet_rolled_up_are_read_raw_so_the_newest_point_is_there(client, base):
    # No rollup has run: the whole range falls back to raw samples, as the newest part always does.
    body = get_series(client, **{"from": iso_utc(base - timedelta(days=5)), "to": iso_utc(base + timedelta(hours=1))})
    assert body["resolution"] == "5m"
    assert sum(1 for v in body["series"]["cpuLoad"]["avg"] if v is not None) == 1


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"from": "yesterday"}, "from"),
        ({"from": "2026-11-29T10:00:00"}, "from"),
        ({"to": "2026-13-01T00:00:00Z"}, "to"),
        ({"from": "2026-11-29T10:00:00Z", "to": "2026-11-29T09:00:00Z"}, "from"),
        ({"from": "0001-01-01T00:00:00+01:00"}, "from"),
        ({"to": "9999-12-31T23:59:59Z"}, "to"),
        ({"step": "0"}, "step"),
        ({"step": "-5"}, "step"),
        ({"step": "ten"}, "step"),
        ({"step": "9" * 40}, "step"),
        ({"step": "1", "from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"}, "step"),
        ({"fields": "cpuLoad,diskFree"}, "fields"),
        ({"fields": "cpuLoad,cpuLoad"}, "fields"),
        ({"fields": ""}, "fields"),
    ],
)
def test_a_bad_parameter_is_a_400_that_names_it(client, base, params, parameter):
    response = client.get("/api/hosts/titan-01/metrics", params)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_parameter" and body["parameter"] == parameter and body["detail"]


def test_an_unknown_host_is_a_404(client):
    response = client.get("/api/hosts/nobody/metrics")
    assert response.status_code == 404 and response.json()["error"] == "not_found"


def test_the_series_is_for_readers_only(client, base, settings):
    settings.TWIN_PUBLIC_READ = False
    assert client.get("/api/hosts/titan-01/metrics").status_code in (401, 403)


def test_a_missing_optional_counter_gives_null_rates_not_an_error(base):
    from hosts.models import Host

    start = base + timedelta(minutes=10)
    bare = sample_dict(at=start)
    for key in ("net_bytes_tx", "net_bytes_rx"):
        del bare[key]
    ingest_at([bare, {**bare, "timestamp": iso_utc(start + timedelta(seconds=10))}])
    host_id = Host.objects.get(hostname="titan-01").pk
    series = series_read(
        host_id=host_id,
        start=start,
        end=start + timedelta(seconds=60),
        step=60,
        keys=("netBytesTx",),
        now=timezone.now(),
        level=RAW,
    )
    assert series.values["netBytesTx"] == {"avg": [None], "min": [None], "max": [None]}
