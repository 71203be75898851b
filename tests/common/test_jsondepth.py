"""common.jsondepth: how deep client JSON nests, counted on its bytes, exactly as a decoder reads it."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.jsondepth import JSON_DEPTH_MAX, json_too_deep


def nested(depth: int, *, key: str = "data") -> bytes:
    """A body ``depth`` deep: an object whose ``key`` holds arrays down to the last level."""
    inner = depth - 1
    return b'{"' + key.encode() + b'": ' + b"[" * inner + b"]" * inner + b"}"


def depth_of(value) -> int:
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    return 0


def test_the_limit_leaves_room_below_what_orjson_encodes():
    assert 16 <= JSON_DEPTH_MAX <= 64
    value = orjson.loads(nested(JSON_DEPTH_MAX))
    # Wrapped in the documents that carry a stored value (a page of commands, an event), still encodable.
    for _ in range(10):
        value = {"wrapper": [value]}
    orjson.dumps(value)


def test_a_body_at_the_limit_passes_and_one_level_more_is_refused_with_its_path():
    assert json_too_deep(nested(JSON_DEPTH_MAX)) is None
    path = json_too_deep(nested(JSON_DEPTH_MAX + 1))
    assert path == "$.data" + "[0]" * (JSON_DEPTH_MAX - 1)


def test_the_path_names_keys_and_indexes_on_the_way():
    body = b'{"a": 1, "b c": [0, 0, {"k": ' + b'{"x": ' * 40 + b"1" + b"}" * 40 + b"}]}"
    path = json_too_deep(body)
    assert path is not None and path.startswith("$['b c'][2].k.x.x")


def test_brackets_and_escaped_quotes_inside_strings_do_not_count():
    text = "[" * 100 + '\\"' + "{" * 100
    body = orjson.dumps({"s": text, "t\\": ["]]]]", '"[', "\\"], "u": {"v": "[[[["}})
    assert json_too_deep(body) is None


def test_str_and_bytes_alike():
    assert json_too_deep(nested(JSON_DEPTH_MAX + 1).decode()) is not None


def test_ten_megabytes_of_brackets_are_refused_at_once():
    import time

    started = time.perf_counter()
    assert json_too_deep(b"[" * (10 * 2**20)) is not None
    assert time.perf_counter() - started < 1.0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab,:'),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(alphabet='[]{}"\\k'), children, max_size=3)
    ),
    max_leaves=60,
)


@given(json_values, st.integers(min_value=1, max_value=12))
def test_the_byte_count_agrees_with_the_decoded_values_depth(value, limit):
    body = json.dumps(value).encode()
    assert (json_too_deep(body, limit=limit) is None) == (depth_of(value) <= limit)


@pytest.mark.parametrize("body", [b"]]]", b"[]]]", b'{"a": "unterminated'])
def test_text_that_is_not_json_is_left_to_its_decoder(body):
    assert json_too_deep(body, limit=1) is None
