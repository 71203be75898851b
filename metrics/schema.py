"""The shape of a metrics batch and the rules each sample must pass.

A typed msgspec decoder reads each sample straight from its JSON bytes: it is
one to two orders of magnitude faster than a DRF serializer for a list of
samples and reports the exact field at fault. Rules msgspec cannot express
(finite numbers, hostname syntax, clock skew) are checked right after.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

import msgspec

from common.jsondecode import JsonMalformed, JsonRefused, json_decode
from common.text import text
from hosts.schema import (
    HOSTNAME_INVALID,
    Hostname,
    Position,
    RackName,
    ShortText,
    decode_naming_a_host,
    hostname_normalize,
)
from metrics.fields import INT64_MAX, METRIC_FIELDS, Counter

EARLIEST_TIMESTAMP = datetime(1970, 1, 1, tzinfo=UTC)

AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]
AgentSession = text(min_length=1, max_length=64)
# A host with more NICs than this reports its busiest ones; the sample stays small.
INTERFACES_MAX = 64
InterfaceName = text(min_length=1, max_length=64)
# LLDP's system name: a host name when the switch is set up well, anything when not (the server normalises it).
NeighborChassis = text(min_length=1, max_length=253)
Mac = Annotated[str, msgspec.Meta(pattern="^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")]
# Labelled metrics (``metrics``): Prometheus's grammar, so a node_exporter series keeps its name and labels.
LABELLED_MAX = 1000
LABELS_MAX = 16
MetricName = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern="^[a-zA-Z_:][a-zA-Z0-9_:]*$")]
# Names starting with two underscores are Prometheus's own (``__name__``): refused, as Prometheus does.
LabelName = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern="^(?!__)[a-zA-Z_][a-zA-Z0-9_]*$")]
LabelValue = text(max_length=128)
MetricUnit = Annotated[str, msgspec.Meta(max_length=32, pattern="^[a-zA-Z0-9_%/.]*$")]


class NeighborIn(msgspec.Struct, forbid_unknown_fields=True):
    """The switch port at the other end of an interface, as LLDP names it (``lldpctl``): a link the twin may learn."""

    chassis: NeighborChassis
    port: InterfaceName | None = None


class InterfaceIn(msgspec.Struct, forbid_unknown_fields=True):
    """One network interface's counters in a sample (``interfaces``), reset-safe rates like the host's own."""

    name: InterfaceName
    rx_bytes: Counter
    tx_bytes: Counter
    speed_mbps: Annotated[int, msgspec.Meta(ge=0, le=10_000_000)] | None = None
    mac: Mac | None = None
    neighbor: NeighborIn | None = None


class LabelledIn(msgspec.Struct, forbid_unknown_fields=True):
    """One labelled gauge or counter in a sample (``metrics``), as in ``{"name": "disk_used_percent",
    "labels": {"mount": "/"}, "value": 71.2}``.

    A series is a name and its labels; its ``type`` (``gauge`` unless said) and
    ``unit`` are fixed by its first report, and a later report that says
    otherwise is refused (metrics/series.py).
    """

    name: MetricName
    value: float
    labels: Annotated[dict[LabelName, LabelValue], msgspec.Meta(max_length=LABELS_MAX)] = {}
    type: Literal["gauge", "counter"] | None = None
    unit: MetricUnit | None = None


def _sample_struct() -> type[msgspec.Struct]:
    """``SampleIn``: one sample as an agent sends it (snake_case, as in the seed contract).

    Built from the registry of metric fields (metrics/fields.py): the required
    metrics after the hostname and timestamp, then what an agent may add.
    """
    required = [(f.name, f.input) for f in METRIC_FIELDS if f.required]
    optional = [(f.name, f.input | None, None) for f in METRIC_FIELDS if not f.required]
    fields = [
        ("hostname", Hostname),
        ("timestamp", AwareDatetime),
        *required,
        ("agent_version", ShortText | None, None),
        ("platform", ShortText | None, None),
        *optional,
        ("rack", RackName | None, None),
        ("position", Position | None, None),
        ("interfaces", Annotated[list[InterfaceIn], msgspec.Meta(max_length=INTERFACES_MAX)] | None, None),
        ("metrics", Annotated[list[LabelledIn], msgspec.Meta(max_length=LABELLED_MAX)] | None, None),
    ]
    return msgspec.defstruct("SampleIn", fields, module=__name__)


SampleIn = _sample_struct()
# Metrics stored as whole numbers but sent as any number (uptime from /proc/uptime).
_TRUNCATED = tuple(f.name for f in METRIC_FIELDS if f.integer and f.input.__origin__ is float)


class BatchEnvelope(msgspec.Struct):
    """The batch body. Samples are kept raw so each is judged on its own.

    ``agent_session`` (new at each agent start) and ``sequence`` (rising within
    the session) name the batch, so a retry of a stored batch stores nothing.
    Signed batches must carry them; the seed's unsigned body has neither.
    """

    samples: list[msgspec.Raw]
    agent_session: AgentSession | None = None
    sequence: Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)] | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why the sample at ``index`` in the batch was not stored."""

    index: int
    reason: str
    hostname: str | None = None

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"index": self.index, "reason": self.reason}
        if self.hostname is not None:
            out["hostname"] = self.hostname
        return out


@dataclass(frozen=True, slots=True)
class MetricsRefusal:
    """Why labelled metrics ``metrics`` (positions in its ``metrics`` list) of the stored sample at ``index`` were not.

    The sample and its other values are stored: a series beyond a cardinality
    limit, or one whose type or unit differs from its first report, costs only
    itself.
    """

    index: int
    hostname: str
    metrics: tuple[int, ...]
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {"index": self.index, "hostname": self.hostname, "metrics": list(self.metrics), "reason": self.reason}


class BatchFormatError(ValueError):
    """The body is not a batch at all (not JSON, or no ``samples`` list)."""


_envelope_decoder = msgspec.json.Decoder(BatchEnvelope)
_sample_decoder = msgspec.json.Decoder(SampleIn)
_samples_decoder = msgspec.json.Decoder(list[SampleIn])


def batch_decode(body: bytes) -> BatchEnvelope:
    """Read a batch body: its envelope, and the raw JSON of each sample."""
    try:
        return json_decode(_envelope_decoder, body)
    except JsonMalformed as exc:
        raise BatchFormatError(f"The body is not valid JSON: {exc}") from None
    except JsonRefused as exc:
        raise BatchFormatError(f"The body is not a batch (an object with a 'samples' list): {exc}") from None


def sample_validate(raw: msgspec.Raw, *, now: datetime, max_future_skew: timedelta) -> SampleIn | str:
    """Decode and check one sample; return it, or the reason it is refused.

    Hostnames come back lower-cased, so ``Titan-01`` and ``titan-01`` are one
    host. Every number is finite: msgspec's JSON decoder refuses ``NaN``,
    ``Infinity`` and literals that overflow a double.
    """
    # The envelope's depth was checked with the body (batch_decode).
    sample = decode_naming_a_host(_sample_decoder, raw, checked=True)
    if isinstance(sample, str):
        return sample
    return _sample_check(sample, now=now, max_future_skew=max_future_skew)


def samples_validate(raws: list[msgspec.Raw], *, now: datetime, max_future_skew: timedelta) -> list[SampleIn | str]:
    """``sample_validate`` for every sample of a batch, in order.

    The whole list is decoded in one call first: when every sample has the
    right shape (the usual batch) that is twice as fast as one call per sample.
    If any does not, each is decoded on its own, so each gets its own reason.
    """
    try:
        decoded = json_decode(_samples_decoder, b"[" + b",".join(raws) + b"]", checked=True)
    except JsonRefused:
        return [sample_validate(raw, now=now, max_future_skew=max_future_skew) for raw in raws]
    normalized: dict[str, str | None] = {}
    checked: list[SampleIn | str] = []
    for sample in decoded:
        if sample.hostname not in normalized:
            normalized[sample.hostname] = hostname_normalize(sample.hostname)
        hostname = normalized[sample.hostname]
        if hostname is None:
            checked.append(HOSTNAME_INVALID)
            continue
        sample.hostname = hostname
        checked.append(_sample_check(sample, now=now, max_future_skew=max_future_skew))
    return checked


def _sample_check(sample: SampleIn, *, now: datetime, max_future_skew: timedelta) -> SampleIn | str:
    """The rules a decoded sample must still pass."""
    if sample.timestamp < EARLIEST_TIMESTAMP:
        # No agent measured anything before then; and a time near year 1 with
        # an offset has no UTC form at all (found by the schema fuzzer).
        return "timestamp is before 1970; check the agent's clock"
    if sample.timestamp - now > max_future_skew:
        return f"timestamp is more than {max_future_skew.total_seconds():g} s in the future"
    for name in _TRUNCATED:
        setattr(sample, name, int(getattr(sample, name)))
    if sample.interfaces:
        names = [i.name for i in sample.interfaces]
        if len(set(names)) < len(names):
            twice = next(n for n in names if names.count(n) > 1)
            return f"interfaces: {twice!r} is named twice; each interface once per sample"
    if sample.metrics:
        reason = _labelled_check(sample.metrics)
        if reason is not None:
            return reason
    return sample


def _labelled_check(metrics: list[LabelledIn]) -> str | None:
    """Why a sample's labelled metrics are refused (a series twice, a negative counter), or None."""
    seen: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
    for position, metric in enumerate(metrics):
        if metric.type == "counter" and metric.value < 0:
            return f"metrics[{position}]: {metric.name} is a counter, and a counter is never negative"
        key = (metric.name, tuple(sorted(metric.labels.items())))
        if key in seen:
            return (
                f"metrics[{position}]: the series {series_text(metric.name, metric.labels)} is also "
                f"metrics[{seen[key]}]; each series once per sample"
            )
        seen[key] = position
    return None


def series_text(name: str, labels: dict[str, str]) -> str:
    """A series as Prometheus writes it: ``disk_used_percent{mount="/"}``."""
    if not labels:
        return name
    inner = ",".join(f"{k}={msgspec.json.encode(v).decode()}" for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"
