"""Link throughput from two counter readings, reset-safe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from metrics.rates import link_throughput_gbps

NOW = datetime(2025, 11, 1, 2, 15, tzinfo=UTC)


def readings(tx, rx, prev_tx, prev_rx, seconds: float = 10) -> dict:
    return {
        "sample_time": NOW,
        "tx": tx,
        "rx": rx,
        "prev_time": NOW - timedelta(seconds=seconds),
        "prev_tx": prev_tx,
        "prev_rx": prev_rx,
    }


def test_throughput_is_both_directions_in_gigabits_per_second():
    # 5 GB sent and received over 10 s = 4 Gbit/s.
    assert link_throughput_gbps(**readings(3_000_000_000, 2_000_000_000, 0, 0)) == pytest.approx(4.0)


def test_a_counter_that_went_down_gives_no_rate():
    assert link_throughput_gbps(**readings(100, 5000, 200, 1000)) is None
    assert link_throughput_gbps(**readings(5000, 100, 1000, 200)) is None


def test_a_single_reading_gives_no_rate():
    assert link_throughput_gbps(**{**readings(10, 10, None, None), "prev_time": None}) is None


def test_readings_without_counters_give_no_rate():
    assert link_throughput_gbps(**readings(None, None, None, None)) is None


def test_readings_at_the_same_instant_give_no_rate():
    assert link_throughput_gbps(**readings(2000, 2000, 1000, 1000, seconds=0)) is None
