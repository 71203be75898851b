"""The ingest's own metrics on /metrics: batches, samples by outcome, refusals by reason, duplicates."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from metrics.instruments import REFUSAL_KINDS, REFUSAL_OTHER, refusal_kind
from tests.conftest import sample_dict
from tests.ops.test_prometheus import scrape, value

pytestmark = pytest.mark.django_db


class Growth:
    """What a scrape after the block shows beyond the scrape before it."""

    def __init__(self, client) -> None:
        self.client = client

    def __enter__(self) -> Growth:
        self.before = scrape(self.client)
        return self

    def __exit__(self, *exc: object) -> None:
        self.after = scrape(self.client)

    def __call__(self, name: str, **labels: str) -> float:
        return value(self.after, name, **labels) - value(self.before, name, **labels)


def test_a_stored_batch_counts_its_samples_its_outcome_and_its_time(client, post_batch, open_twin):
    with Growth(client) as grown:
        response = post_batch([sample_dict(f"inst-{i:02d}") for i in range(3)])
        assert response.status_code == 202
    assert grown("twin_ingest_batches_total", outcome="stored") == 1
    assert grown("twin_ingest_samples_total", outcome="accepted") == 3
    assert grown("twin_ingest_samples_total", outcome="refused") == 0
    assert grown("twin_ingest_batch_duration_seconds_count") == 1
    assert grown("twin_ingest_batch_duration_seconds_sum") > 0
    assert grown("twin_ingest_batch_duration_seconds_bucket", le="+Inf") == 1


def test_refused_samples_are_counted_by_the_kind_of_their_reason(client, post_batch, open_twin):
    now = timezone.now()
    same = sample_dict("inst-dup", at=now)
    batch = [
        sample_dict("inst-ok", at=now),
        sample_dict("inst-future", at=now + timedelta(days=1)),
        sample_dict("Not_A_Host!", at=now),
        {k: v for k, v in sample_dict("inst-missing").items() if k != "cpu_load"},
        same,
        same,
    ]
    with Growth(client) as grown:
        response = post_batch(batch)
        assert response.status_code == 202, response.content
    reasons = [r["reason"] for r in response.json()["rejected"]]
    assert len(reasons) == 4
    assert grown("twin_ingest_batches_total", outcome="stored") == 1
    assert grown("twin_ingest_samples_total", outcome="accepted") == 2
    assert grown("twin_ingest_samples_total", outcome="refused") == 4
    for kind in ("timestamp_in_future", "invalid_hostname", "invalid_sample", "duplicate_in_batch"):
        assert grown("twin_ingest_samples_refused_total", reason=kind) == 1, kind
    # The label never carries the sentence (it names hosts and indexes).
    assert not any("inst-" in str(labels) for _, labels in grown.after)


def test_a_batch_with_nothing_valid_is_counted_as_such(client, post_batch, open_twin):
    with Growth(client) as grown:
        response = post_batch([sample_dict("inst-old", at=timezone.now() - timedelta(days=365 * 80))])
        assert response.status_code == 400
    assert grown("twin_ingest_batches_total", outcome="nothing_valid") == 1
    assert grown("twin_ingest_samples_refused_total", reason="timestamp_too_old") == 1


def test_samples_stored_before_and_a_batch_sent_again_are_counted_as_duplicates(client, make_agent):
    agent = make_agent("inst-agent")
    first = sample_dict("inst-agent", at=timezone.now() - timedelta(seconds=20))
    second = sample_dict("inst-agent", at=timezone.now() - timedelta(seconds=10))
    assert agent.post([first]).status_code == 202
    body = agent.body([first, second])
    headers = agent.headers(body)
    with Growth(client) as grown:
        assert agent.send(body, headers).json()["duplicates"] == 1
        assert agent.send(body, headers).json()["duplicate"] is True
    assert grown("twin_ingest_samples_total", outcome="duplicate") == 1
    assert grown("twin_ingest_samples_total", outcome="accepted") == 1
    assert grown("twin_ingest_batches_total", outcome="stored") == 1
    assert grown("twin_ingest_batches_total", outcome="duplicate") == 1


def test_a_foreign_hostname_is_its_own_kind(client, make_agent):
    agent = make_agent("inst-signer")
    with Growth(client) as grown:
        response = agent.post([sample_dict("inst-signer"), sample_dict("inst-stranger")])
        assert response.status_code == 202
    assert grown("twin_ingest_samples_refused_total", reason="foreign_hostname") == 1


def test_every_refusal_sentence_of_the_ingest_has_a_kind_of_its_own():
    from hosts.schema import HOSTNAME_INVALID

    sentences = {
        HOSTNAME_INVALID: "invalid_hostname",
        "timestamp is before 1970; check the agent's clock": "timestamp_too_old",
        "timestamp is more than 300 s in the future": "timestamp_in_future",
        "foreign hostname: the credential of a may not report for b": "foreign_hostname",
        "virtual host: core has no agent of its own": "virtual_host",
        "duplicate of sample 0 (same hostname and timestamp)": "duplicate_in_batch",
        "Object missing required field `cpu_load` - at `$`": REFUSAL_OTHER,
    }
    assert {refusal_kind(s) for s in sentences} == {kind for _, kind in REFUSAL_KINDS} | {REFUSAL_OTHER}
    for sentence, kind in sentences.items():
        assert refusal_kind(sentence) == kind, sentence
