"""Properties that hold for any input: validation never crashes, rates are never negative."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metrics.rates import link_throughput_gbps
from metrics.schema import BatchFormatError, SampleIn, batch_decode, sample_validate, samples_validate

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SKEW = timedelta(seconds=300)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=10,
)
fields = st.sampled_from(
    ["hostname", "timestamp", "cpu_load", "memory_used_percent", "load_average", "uptime_seconds", "net_bytes_tx",
     "rack", "position"]
)  # fmt: skip


def validate(obj: object) -> SampleIn | str:
    # The standard library writes integers of any size, as a hostile agent might.
    return sample_validate(msgspec.Raw(json.dumps(obj).encode()), now=NOW, max_future_skew=SKEW)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(fields, json_values, max_size=9))
def test_any_json_object_is_either_a_sample_or_a_reason(obj):
    result = validate(obj)
    assert isinstance(result, (SampleIn, str))


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_any_bytes_are_either_a_batch_or_a_format_error(body):
    try:
        batch = batch_decode(body)
    except BatchFormatError as exc:
        assert str(exc)
    else:
        assert isinstance(batch.samples, list)


valid_samples = st.fixed_dictionaries(
    {
        "hostname": st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?\Z"),
        "timestamp": st.datetimes(
            min_value=datetime(2000, 1, 1), max_value=datetime(2025, 12, 31), timezones=st.just(UTC)
        ).map(lambda d: d.isoformat()),
        "cpu_load": st.floats(0, 100),
        "memory_used_percent": st.floats(0, 100),
        "load_average": st.floats(0, 1e6),
        "uptime_seconds": st.integers(0, 2**40),
        "net_bytes_tx": st.integers(0, 2**63 - 1),
    }
)


@settings(max_examples=300)
@given(valid_samples)
def test_every_sample_within_the_rules_is_accepted(obj):
    result = validate(obj)
    assert isinstance(result, SampleIn), result
    assert result.hostname == obj["hostname"]


@settings(max_examples=200)
@given(valid_samples, st.sampled_from(["cpu_load", "memory_used_percent"]), st.floats(100.0001, 1e12))
def test_every_percentage_above_100_is_refused(obj, field, value):
    assert isinstance(validate({**obj, field: value}), str)


counters = st.integers(0, 2**63 - 1)


@settings(max_examples=500)
@given(counters, counters, counters, counters, st.floats(0.001, 1e6))
def test_a_rate_is_never_negative_nor_infinite(tx, rx, prev_tx, prev_rx, seconds):
    rate = link_throughput_gbps(
        sample_time=NOW, tx=tx, rx=rx, prev_time=NOW - timedelta(seconds=seconds), prev_tx=prev_tx, prev_rx=prev_rx
    )
    if tx < prev_tx or rx < prev_rx:
        assert rate is None
    else:
        assert rate is not None and rate >= 0 and math.isfinite(rate)
        delta_seconds = (NOW - (NOW - timedelta(seconds=seconds))).total_seconds()
        expected = (tx - prev_tx + rx - prev_rx) * 8 / delta_seconds / 1e9
        assert math.isclose(rate, expected, rel_tol=1e-9)


def _raws(objects: list[object]) -> list[msgspec.Raw]:
    return [msgspec.Raw(json.dumps(obj).encode()) for obj in objects]


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(valid_samples | st.dictionaries(fields, json_values, max_size=9), max_size=6))
def test_a_batch_is_judged_as_its_samples_are_one_by_one(objects):
    # The one-call decoding of a whole batch is only a faster road to the same verdicts.
    raws = _raws(objects)
    together = samples_validate(raws, now=NOW, max_future_skew=SKEW)
    alone = [sample_validate(raw, now=NOW, max_future_skew=SKEW) for raw in raws]
    assert together == alone


@settings(max_examples=100)
@given(st.lists(valid_samples, min_size=1, max_size=6), st.sampled_from(["Bad_Host", "-edge", "ho st", "\uff34itan"]))
def test_a_well_shaped_sample_with_a_bad_hostname_is_refused_alone(objects, hostname):
    verdicts = samples_validate(_raws([*objects, {**objects[0], "hostname": hostname}]), now=NOW, max_future_skew=SKEW)
    assert all(isinstance(v, SampleIn) for v in verdicts[:-1])
    assert isinstance(verdicts[-1], str) and "RFC 1123" in verdicts[-1]
