"""The ingest's own Prometheus metrics: batches, samples stored, duplicates, refusals by reason.

Recorded once per batch by ``metrics.services.batch_receive``, from the
``IngestResult`` after ``samples_ingest`` returns, so the ingest itself carries
no instrumentation.
``/metrics`` (ops) exposes them; docs/operations.md, "Reading the metrics", says
what each means. The children of fixed labels are bound here once: a
``labels()`` lookup per batch would cost more than the increment itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import Counter, Histogram

from hosts.schema import HOSTNAME_INVALID

if TYPE_CHECKING:
    # Only a type here: metrics.services records through this module.
    from metrics.services import IngestResult

# From a one-sample batch (a few ms) to a 10,000-sample one on a loaded machine.
BATCH_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

INGEST_BATCHES = Counter(
    "twin_ingest_batches",
    "Batches the ingest service handled, by outcome: stored (at least one sample valid), "
    "duplicate (a retry of a batch already stored, nothing written), nothing_valid (every sample refused).",
    ["outcome"],
)
INGEST_BATCH_SECONDS = Histogram(
    "twin_ingest_batch_duration_seconds",
    "Time the ingest service took for one batch (validation, storage, commit), without HTTP and signature.",
    buckets=BATCH_SECONDS_BUCKETS,
)
INGEST_SAMPLES = Counter(
    "twin_ingest_samples",
    "Samples of handled batches, by outcome: accepted (stored now), duplicate (stored by an earlier batch), "
    "refused (see twin_ingest_samples_refused_total).",
    ["outcome"],
)
INGEST_REFUSED = Counter(
    "twin_ingest_samples_refused",
    "Samples refused, by reason (a fixed set of kinds; the batch's answer has the full sentence).",
    ["reason"],
)

_BATCH_STORED = INGEST_BATCHES.labels("stored")
_BATCH_DUPLICATE = INGEST_BATCHES.labels("duplicate")
_BATCH_NOTHING_VALID = INGEST_BATCHES.labels("nothing_valid")
_SAMPLES_ACCEPTED = INGEST_SAMPLES.labels("accepted")
_SAMPLES_DUPLICATE = INGEST_SAMPLES.labels("duplicate")
_SAMPLES_REFUSED = INGEST_SAMPLES.labels("refused")

# The refusal sentences of metrics.schema and metrics.services, by how they start,
# to a label of bounded cardinality (a sentence names hosts and indexes).
REFUSAL_KINDS: tuple[tuple[str, str], ...] = (
    (HOSTNAME_INVALID, "invalid_hostname"),
    ("timestamp is before", "timestamp_too_old"),
    ("timestamp is more than", "timestamp_in_future"),
    ("foreign hostname:", "foreign_hostname"),
    ("virtual host:", "virtual_host"),
    ("duplicate of sample", "duplicate_in_batch"),
)
# Anything else is the decoder's: a field missing, of the wrong type or out of range.
REFUSAL_OTHER = "invalid_sample"
# Every kind is exposed from the start, at zero: rate() needs the series before its first refusal.
for _kind in (*(kind for _, kind in REFUSAL_KINDS), REFUSAL_OTHER):
    INGEST_REFUSED.labels(_kind)


def refusal_kind(reason: str) -> str:
    """The label of a refusal sentence."""
    for start, kind in REFUSAL_KINDS:
        if reason.startswith(start):
            return kind
    return REFUSAL_OTHER


def batch_observe(result: IngestResult, *, seconds: float) -> None:
    """Count one handled batch: its outcome, its samples by outcome, its refusals by kind, its time."""
    INGEST_BATCH_SECONDS.observe(seconds)
    if result.duplicate_batch:
        _BATCH_DUPLICATE.inc()
    elif result.nothing_valid:
        _BATCH_NOTHING_VALID.inc()
    else:
        _BATCH_STORED.inc()
    if result.accepted:
        _SAMPLES_ACCEPTED.inc(result.accepted)
    if result.duplicates:
        _SAMPLES_DUPLICATE.inc(result.duplicates)
    if result.rejected:
        # The rare path: refusals are grouped first, one increment per kind.
        _SAMPLES_REFUSED.inc(len(result.rejected))
        kinds: dict[str, int] = {}
        for rejection in result.rejected:
            kind = refusal_kind(rejection.reason)
            kinds[kind] = kinds.get(kind, 0) + 1
        for kind, count in kinds.items():
            INGEST_REFUSED.labels(kind).inc(count)
