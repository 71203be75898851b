"""common.jsondecode: every way client bytes can fail is a reason, never an exception; at every endpoint."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
import pytest

from common.jsondecode import JsonInvalid, JsonMalformed, JsonTooDeep, json_decode
from hosts.models import Host
from metrics.models import BatchReceipt, Sample
from tests.conftest import sample_dict

NESTED = b"[" * 1200 + b"]" * 1200


class Shape(msgspec.Struct):
    name: str
    raw: list[msgspec.Raw] = msgspec.field(default_factory=list)
    anything: Any = None


DECODER = msgspec.json.Decoder(Shape)


@pytest.mark.parametrize(
    "data",
    [
        b'{"name": "a", "anything": ' + b'{"a": ' * 1200 + b"1" + b"}" * 1200 + b"}",
        b'{"name": "a", "raw": [' + NESTED + b"]}",
        b'{"name": "a", "other": ' + NESTED + b"}",
    ],
    ids=["in-a-field", "inside-raw", "inside-unknown-field"],
)
def test_nesting_deeper_than_the_recursion_limit_is_refused_before_decoding(data):
    with pytest.raises(JsonTooDeep):
        json_decode(DECODER, data)
    # A part of a body said to be checked is decoded as is, and still never escapes as RecursionError.
    with pytest.raises(JsonMalformed, match="nested too deeply"):
        json_decode(DECODER, data, checked=True)


def test_bytes_that_are_not_utf8_in_a_string_are_malformed_json():
    with pytest.raises(JsonMalformed, match="not UTF-8"):
        json_decode(DECODER, b'{"name": "caf\xe9"}')


def test_a_lone_surrogate_escape_never_decodes():
    with pytest.raises(JsonMalformed):
        json_decode(DECODER, b'{"name": "\\udc00x"}')


def test_the_wrong_shape_is_invalid_json_with_the_field_named():
    with pytest.raises(JsonInvalid, match=r"\$\.name"):
        json_decode(DECODER, b'{"name": 5}')


# --- at the batch endpoint ---------------------------------------------------------------------


def _envelope(samples: bytes, extra: bytes = b"") -> bytes:
    return b'{"samples": [' + samples + b"]" + extra + b"}"


@pytest.mark.django_db
@pytest.mark.usefixtures("open_twin")
@pytest.mark.parametrize(
    "body",
    [
        _envelope(NESTED),
        _envelope(orjson.dumps(sample_dict()), b', "extra": ' + NESTED),
        _envelope(orjson.dumps(sample_dict()), b', "agent_session": "a\xe9"'),
        _envelope(orjson.dumps(sample_dict()), b', "agent_session": "a\\u0000"'),
    ],
    ids=["nested-sample", "nested-unknown-field", "invalid-utf8-session", "nul-session"],
)
def test_a_hostile_envelope_is_a_json_400_and_nothing_is_stored(post_batch, body):
    response = post_batch(body=body)
    assert response.status_code == 400, response.content
    # Nesting beyond the one depth limit has its own code, naming the field (tests/common/test_json_depth.py).
    assert response.json()["error"] == ("json_too_deep" if NESTED in body else "malformed_batch")
    assert not Sample.objects.exists() and not BatchReceipt.objects.exists()


@pytest.mark.django_db
@pytest.mark.usefixtures("open_twin")
@pytest.mark.parametrize(
    "bad",
    [
        b'{"hostname": "titan-\xe9", "timestamp": "2026-01-01T00:00:00Z"}',
        orjson.dumps(sample_dict("bad-1"))[:-1] + b', "platform": "Linux-\xe9"}',
        orjson.dumps(sample_dict("titan-01\n")),
        orjson.dumps(sample_dict("core-switch\n")),
    ],
    ids=["invalid-utf8-hostname", "invalid-utf8-platform", "trailing-newline-hostname", "trailing-newline-switch"],
)
def test_a_hostile_sample_is_refused_on_its_own_and_the_others_are_stored(post_batch, bad):
    body = b'{"samples": [' + orjson.dumps(sample_dict("good-1")) + b", " + bad + b"]}"
    response = post_batch(body=body)
    assert response.status_code == 202, response.content
    assert response.json()["accepted"] == 1
    assert response.json()["rejected"][0]["index"] == 1
    assert set(Host.objects.values_list("hostname", flat=True)) == {"core-switch", "good-1"}
