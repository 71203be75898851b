"""Large JSON answers compressed in the best encoding the client accepts (common.compression)."""

from __future__ import annotations

import gzip

import brotli
import orjson
import pytest
import zstandard
from django.test import RequestFactory

from common.compression import COMPRESS_MIN_BYTES, encoding_choose, json_response
from tests.conftest import sample_dict

INFLATE = {
    "zstd": lambda body: zstandard.ZstdDecompressor().decompress(body),
    "br": brotli.decompress,
    "gzip": gzip.decompress,
}


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        ("gzip, deflate, br, zstd", "zstd"),  # Chromium's: ours first among equals
        ("gzip, deflate, br", "br"),  # Safari's
        ("gzip", "gzip"),
        ("GZIP", "gzip"),
        ("br;q=0.5, gzip;q=0.9", "gzip"),  # the client's weights win over our order
        ("zstd;q=0, gzip", "gzip"),  # q=0 means "not this one"
        ("*", "zstd"),
        ("*;q=0", None),
        ("*;q=0.1, zstd;q=0", "br"),
        ("", None),
        ("identity", None),
        ("deflate, compress", None),
        ("zstd;q=nan, gzip;q=2", None),  # an unreadable or out-of-range weight counts as 0
        ("zstd;q=banana", None),
        (",,;;==, ;q=", None),
        ("gzip, " + "x" * 10_000 + ", zstd", "gzip"),  # only the header's start is read
    ],
)
def test_the_encoding_is_the_clients_highest_weight_among_ours(accept, chosen):
    assert encoding_choose(accept) == chosen


@pytest.mark.parametrize("encoding", ["zstd", "br", "gzip"])
def test_a_large_answer_is_compressed_and_inflates_to_the_same_bytes(encoding):
    body = orjson.dumps([sample_dict(hostname=f"node-{n}") for n in range(200)])
    request = RequestFactory().get("/", headers={"Accept-Encoding": encoding})
    response = json_response(request, body)
    assert response["Content-Encoding"] == encoding and response["Vary"] == "Accept-Encoding"
    assert int(response["Content-Length"]) == len(response.content) < len(body) / 4
    assert INFLATE[encoding](response.content) == body


def test_an_answer_is_sent_as_it_is_to_a_client_that_accepts_no_encoding_of_ours():
    body = b"[" + b"1," * COMPRESS_MIN_BYTES + b"1]"
    response = json_response(RequestFactory().get("/", headers={"Accept-Encoding": "deflate"}), body)
    assert response.content == body and not response.has_header("Content-Encoding")
    assert response["Vary"] == "Accept-Encoding"  # a cache must still keep one copy per encoding


def test_a_small_answer_is_not_worth_compressing():
    response = json_response(RequestFactory().get("/", headers={"Accept-Encoding": "zstd"}), b'{"ok": true}')
    assert response.content == b'{"ok": true}' and not response.has_header("Content-Encoding")
