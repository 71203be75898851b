"""Validation of single samples, straight from their JSON bytes."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import orjson
import pytest
from django.utils import timezone

from metrics.schema import BatchFormatError, SampleIn, batch_decode, sample_validate
from tests.conftest import sample_dict

SKEW = timedelta(seconds=300)


def validate(sample: dict | bytes) -> SampleIn | str:
    raw = sample if isinstance(sample, bytes) else orjson.dumps(sample)
    return sample_validate(msgspec.Raw(raw), now=timezone.now(), max_future_skew=SKEW)


def test_the_seed_sample_is_valid():
    sample = validate(sample_dict())
    assert isinstance(sample, SampleIn)
    assert sample.hostname == "titan-01"
    assert sample.net_bytes_tx == 1250000000
    assert sample.position is not None
    assert (sample.position.x, sample.position.y, sample.position.z) == (1.2, 0.4, -0.8)


def test_hostnames_are_lower_cased():
    sample = validate(sample_dict(hostname="Titan-01.DC1"))
    assert isinstance(sample, SampleIn) and sample.hostname == "titan-01.dc1"


@pytest.mark.parametrize(
    "hostname",
    ["-titan", "titan-", "ti_tan", "titan..01", "a" * 64, ("a" * 60 + ".") * 5, "t\u0456tan-01", "", "titan 01"],
    ids=[
        "leading-hyphen",
        "trailing-hyphen",
        "underscore",
        "empty-label",
        "long-label",
        "too-long",
        "cyrillic-i",
        "empty",
        "space",
    ],
)
def test_hostnames_that_break_rfc_1123_are_refused(hostname):
    assert isinstance(validate(sample_dict(hostname=hostname)), str)


@pytest.mark.parametrize("field", ["cpu_load", "memory_used_percent"])
@pytest.mark.parametrize("value", [-0.1, 100.1])
def test_percentages_outside_0_to_100_are_refused(field, value):
    reason = validate(sample_dict(**{field: value}))
    assert isinstance(reason, str) and field in reason


@pytest.mark.parametrize("field", ["load_average", "uptime_seconds", "net_bytes_tx", "net_bytes_rx"])
def test_negative_load_uptime_and_counters_are_refused(field):
    reason = validate(sample_dict(**{field: -1}))
    assert isinstance(reason, str) and field in reason


def test_counters_beyond_64_bits_are_refused():
    reason = validate(sample_dict(net_bytes_tx=2**63))
    assert isinstance(reason, str) and "net_bytes_tx" in reason


def test_counters_must_be_integers():
    assert isinstance(validate(sample_dict(net_bytes_rx=1.5)), str)


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_non_finite_numbers_are_refused(literal):
    body = orjson.dumps(sample_dict()).replace(b'"load_average":1.72', b'"load_average":' + literal)
    assert isinstance(validate(body), str)


def test_a_timestamp_without_offset_is_refused():
    reason = validate(sample_dict(timestamp="2025-11-01T02:15:00"))
    assert isinstance(reason, str) and "timezone" in reason


def test_a_timestamp_with_an_offset_other_than_utc_is_accepted():
    moment = timezone.now().astimezone(timezone.get_fixed_timezone(120))
    assert isinstance(validate(sample_dict(timestamp=moment.isoformat())), SampleIn)


def test_a_timestamp_too_far_in_the_future_is_refused():
    reason = validate(sample_dict(at=timezone.now() + timedelta(seconds=301)))
    assert isinstance(reason, str) and "future" in reason


def test_a_timestamp_within_the_skew_is_accepted():
    assert isinstance(validate(sample_dict(at=timezone.now() + timedelta(seconds=200))), SampleIn)


@pytest.mark.parametrize("field", ["hostname", "timestamp", "cpu_load", "memory_used_percent", "load_average"])
def test_required_fields_must_be_present(field):
    sample = sample_dict()
    del sample[field]
    reason = validate(sample)
    assert isinstance(reason, str) and field in reason


def test_optional_fields_may_be_left_out():
    sample = sample_dict()
    for field in ["agent_version", "platform", "net_bytes_tx", "net_bytes_rx", "rack", "position"]:
        del sample[field]
    assert isinstance(validate(sample), SampleIn)


def test_wrong_types_are_refused_with_the_field_named():
    reason = validate(sample_dict(cpu_load="high"))
    assert isinstance(reason, str) and "cpu_load" in reason


def test_fractional_uptime_is_kept_in_whole_seconds():
    sample = validate(sample_dict(uptime_seconds=7200.9))
    assert isinstance(sample, SampleIn) and sample.uptime_seconds == 7200


def test_a_body_without_samples_is_not_a_batch():
    with pytest.raises(BatchFormatError, match="samples"):
        batch_decode(b'{"sample": []}')


def test_a_body_that_is_not_json_is_not_a_batch():
    with pytest.raises(BatchFormatError, match="JSON"):
        batch_decode(b'{"samples": [')


def test_a_batch_splits_into_raw_samples():
    batch = batch_decode(orjson.dumps({"samples": [sample_dict(), {"x": 1}]}))
    assert len(batch.samples) == 2 and orjson.loads(bytes(batch.samples[1])) == {"x": 1}
    assert (batch.agent_session, batch.sequence) == (None, None)


def test_a_batch_may_name_its_agent_session_and_sequence():
    batch = batch_decode(orjson.dumps({"samples": [], "agent_session": "s-1", "sequence": 7}))
    assert (batch.agent_session, batch.sequence) == ("s-1", 7)


@pytest.mark.parametrize("envelope", [{"sequence": -1}, {"sequence": "7"}, {"agent_session": ""}])
def test_a_malformed_session_or_sequence_is_not_a_batch(envelope):
    with pytest.raises(BatchFormatError):
        batch_decode(orjson.dumps({"samples": [], **envelope}))


def test_a_10000_character_hostname_is_refused():
    reason = validate(sample_dict(hostname="a" * 10_000))
    assert isinstance(reason, str) and "hostname" in reason


WRONG_TYPES = {
    "hostname": 42,
    "timestamp": 1730427300,
    "cpu_load": "42.5",
    "memory_used_percent": [63.2],
    "load_average": {"one": 1.72},
    "uptime_seconds": "7200",
    "agent_version": 1,
    "platform": True,
    "net_bytes_tx": 1.5e9,
    "net_bytes_rx": "980000000",
    "rack": ["R1"],
    "position": [1.2, 0.4, -0.8],
}


@pytest.mark.parametrize(("field", "value"), WRONG_TYPES.items(), ids=list(WRONG_TYPES))
def test_a_wrong_type_in_any_field_is_refused_with_that_field_named(field, value):
    reason = validate(sample_dict(**{field: value}))
    assert isinstance(reason, str) and field in reason


def test_the_seed_sample_carries_no_interfaces_and_stays_valid():
    sample = validate(sample_dict())
    assert isinstance(sample, SampleIn) and sample.interfaces is None


def test_a_sample_may_carry_its_interfaces_counters():
    interfaces = [
        {"name": "eth0", "rx_bytes": 10, "tx_bytes": 20, "speed_mbps": 25000, "mac": "aa:bb:cc:dd:ee:ff"},
        {"name": "eth1", "rx_bytes": 0, "tx_bytes": 0},
    ]
    sample = validate(sample_dict(interfaces=interfaces))
    assert isinstance(sample, SampleIn)
    assert [(i.name, i.rx_bytes, i.tx_bytes, i.speed_mbps) for i in sample.interfaces] == [
        ("eth0", 10, 20, 25000),
        ("eth1", 0, 0, None),
    ]


@pytest.mark.parametrize(
    ("interfaces", "reason"),
    [
        ([{"name": "eth0", "rx_bytes": -1, "tx_bytes": 0}], "$.interfaces[0].rx_bytes"),
        ([{"name": "eth0", "rx_bytes": 0}], "missing required field `tx_bytes` - at `$.interfaces[0]`"),
        ([{"name": "", "rx_bytes": 0, "tx_bytes": 0}], "$.interfaces[0].name"),
        ([{"name": "eth0", "rx_bytes": 0, "tx_bytes": 0, "mac": "nope"}], "$.interfaces[0].mac"),
        ([{"name": "eth0", "rx_bytes": 0, "tx_bytes": 0, "speedMbps": 1}], "unknown field `speedMbps`"),
        ([{"name": "eth0", "rx_bytes": 0, "tx_bytes": 0}] * 2, "'eth0' is named twice"),
        ([{"name": f"e{i}", "rx_bytes": 0, "tx_bytes": 0} for i in range(65)], "length <= 64 - at `$.interfaces`"),
    ],
)
def test_bad_interfaces_are_refused_with_the_field_named(interfaces, reason):
    refused = validate(sample_dict(interfaces=interfaces))
    assert isinstance(refused, str) and reason in refused, refused
