"""A Prometheus remote-write 1.0 body: snappy's block format around a protobuf ``WriteRequest``.

Bounded before anything is inflated: snappy's block format starts with the
inflated length (a varint), so a body that would inflate beyond the limit is
refused from its first bytes, not after the memory is spent.
"""

from __future__ import annotations

from dataclasses import dataclass

import cramjam
from google.protobuf.message import DecodeError

from collectors.prompb.prometheus_remote_pb2 import WriteRequest
from common.http import MalformedBody, PayloadTooLarge


class RemoteWriteTooLarge(PayloadTooLarge):
    """A write request that inflates beyond ``TWIN_MAX_BODY_BYTES``."""


def _inflated_length(body: bytes) -> int:
    """The length snappy's block format says its data inflates to (a little-endian base-128 varint)."""
    length = shift = 0
    for byte in body[:5]:
        length |= (byte & 0x7F) << shift
        if byte < 0x80:
            return length
        shift += 7
    raise MalformedBody(
        "The body is not snappy's block format: its length prefix is unreadable.", code="malformed_snappy"
    )


def write_request_decode(body: bytes, *, limit: int) -> WriteRequest:
    """The ``WriteRequest`` in a remote-write body, or a 400/413 naming what is wrong with it."""
    inflated = _inflated_length(body)
    if inflated > limit:
        raise RemoteWriteTooLarge(
            f"The write request inflates to {inflated} bytes; at most {limit} (TWIN_MAX_BODY_BYTES). "
            "Lower max_samples_per_send in Prometheus's queue_config."
        )
    try:
        raw = bytes(cramjam.snappy.decompress_raw(body))
    except Exception as exc:  # cramjam raises its own DecompressionError for every corrupt input
        raise MalformedBody(f"The body is not valid snappy (block format): {exc}", code="malformed_snappy") from None
    try:
        return WriteRequest.FromString(raw)
    except DecodeError as exc:
        raise MalformedBody(f"The body is not a remote-write WriteRequest: {exc}", code="malformed_protobuf") from None


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    """One sample of one series: its name, its other labels, its value and time (ms since the epoch)."""

    name: str
    labels: dict[str, str]
    value: float
    timestamp_ms: int


def write_request_points(request: WriteRequest, *, names: frozenset[str]) -> tuple[list[SeriesPoint], int]:
    """Every sample of the series named one of ``names``, labels as a dict (``__name__`` out); and how many others.

    The name is read first and the other series are skipped without building
    their labels: most of node_exporter's ~1,000 series a host are not kept,
    and building their dicts was most of a request's time (profiled).
    """
    points: list[SeriesPoint] = []
    ignored = 0
    for series in request.timeseries:
        labels = series.labels
        # Prometheus sends labels sorted by name: __name__ is first unless a name sorts before it.
        if labels and labels[0].name == "__name__":
            name = labels[0].value
        else:
            name = next((label.value for label in labels if label.name == "__name__"), "")
        if name not in names:
            ignored += 1
            continue
        kept = {label.name: label.value for label in labels if label.name != "__name__"}
        for sample in series.samples:
            points.append(SeriesPoint(name=name, labels=kept, value=sample.value, timestamp_ms=sample.timestamp))
    return points, ignored
