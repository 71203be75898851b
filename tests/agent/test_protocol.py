"""The agent's wire protocol against the real server: signed batches, retries, refusals, nothing stored twice."""

from __future__ import annotations

import logging
import os
import shutil
import stat
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from twin_agent.backoff import Backoff
from twin_agent.collect import Collector, sample_bytes
from twin_agent.protocol import AgentStopped, SignedClient, Uplink
from twin_agent.signing import signature_compute
from twin_agent.spool import Spool
from twin_agent.state import credential_load
from twin_agent.transport import Http, Reply

from hosts.credentials import signature_compute as server_signature
from metrics.models import BatchReceipt, Sample
from tests.agent.conftest import agent_enroll_cli
from tests.conftest import iso, sample_dict


def uplink_for(credential, http, spool, **kw) -> Uplink:
    kw.setdefault("session", "session-1")
    return Uplink(client=SignedClient(http=http, credential=credential), spool=spool, **kw)


def spool_samples(spool, hostname: str, n: int, **overrides) -> list[str]:
    stamps = []
    for i in range(n):
        stamp = iso(timezone.now() - timedelta(seconds=n - i))
        spool.add(stream=hostname, sample=sample_bytes(sample_dict(hostname, timestamp=stamp, **overrides)))
        stamps.append(stamp)
    return stamps


def test_the_agent_signs_exactly_as_the_server_checks():
    body = b'{"samples": []}'
    assert signature_compute(secret="s3cret", timestamp="1700000000", signed=body) == server_signature(
        secret="s3cret", timestamp="1700000000", body=body
    )


def test_a_signed_batch_of_real_samples_is_accepted_and_stored(enroll, django_http, spool):
    credential = enroll("agent-01")
    collector = Collector(hostname=credential.hostname, rack="R2", position={"x": 1.0, "y": 0.4, "z": 3.0})
    for _ in range(2):
        spool.add(stream="agent-01", sample=sample_bytes(collector.sample()))

    report = uplink_for(credential, django_http, spool).flush()

    assert (report.batches, report.samples, report.failure) == (1, 2, None)
    assert Sample.objects.filter(host__hostname="agent-01").count() == 2
    receipt = BatchReceipt.objects.get(reporter="agent-01")
    assert (receipt.agent_session, receipt.sequence, receipt.accepted) == ("session-1", 1, 2)
    assert spool.depth("agent-01") == 0


def test_a_batch_resent_after_a_crash_keeps_its_number_and_is_stored_once(enroll, django_http, tmp_path, caplog):
    credential = enroll("agent-01")
    spool = Spool(tmp_path / "spool.sqlite3")
    spool_samples(spool, "agent-01", 3)
    spool.batch_next(stream="agent-01", session="before-crash", max_samples=500)
    # The state a kill -9 right after the server stored the batch leaves: numbered, not yet acknowledged.
    for suffix in ("", "-wal", "-shm"):
        if (tmp_path / f"spool.sqlite3{suffix}").exists():
            shutil.copy(tmp_path / f"spool.sqlite3{suffix}", tmp_path / f"crashed.sqlite3{suffix}")
    assert uplink_for(credential, django_http, spool, session="before-crash").flush().samples == 3

    restarted = Spool(tmp_path / "crashed.sqlite3")
    with caplog.at_level(logging.INFO, logger="twin_agent"):
        report = uplink_for(credential, django_http, restarted, session="after-restart").flush()

    assert report.batches == 1
    assert "already stored" in caplog.text
    assert Sample.objects.filter(host__hostname="agent-01").count() == 3
    assert BatchReceipt.objects.filter(reporter="agent-01").count() == 1
    assert restarted.depth("agent-01") == 0


def test_samples_refused_one_by_one_are_dropped_with_their_reason_logged(enroll, django_http, spool, caplog):
    credential = enroll("agent-01")
    spool_samples(spool, "agent-01", 1)
    spool_samples(spool, "agent-01", 1, cpu_load=150)

    with caplog.at_level(logging.WARNING, logger="twin_agent"):
        report = uplink_for(credential, django_http, spool).flush()

    assert report.batches == 1
    assert Sample.objects.filter(host__hostname="agent-01").count() == 1
    assert spool.counters("agent-01") == {"collected": 2, "delivered": 1, "rejected": 1, "dropped": 0}
    refused = [r for r in caplog.records if "refused by the server" in r.getMessage()]
    assert len(refused) == 1 and "cpu_load" in refused[0].getMessage()
    assert refused[0].fields["index"] == 1


def test_a_batch_with_no_valid_sample_is_dropped_and_the_next_goes_on(enroll, django_http, spool):
    credential = enroll("agent-01")
    spool_samples(spool, "agent-01", 2, memory_used_percent=-1)
    uplink = uplink_for(credential, django_http, spool, batch_max_samples=2)
    assert uplink.flush().failure is None
    spool_samples(spool, "agent-01", 1)
    assert uplink.flush().samples == 1
    assert spool.counters("agent-01")["rejected"] == 2
    assert Sample.objects.filter(host__hostname="agent-01").count() == 1


def test_a_revoked_credential_stops_the_agent_with_how_to_enroll_again(enroll, django_http, spool):
    old = enroll("agent-01")
    enroll("agent-01")  # registering again rotates the credential: the old one is revoked
    spool_samples(spool, "agent-01", 2)
    uplink = uplink_for(old, django_http, spool)

    with pytest.raises(AgentStopped) as stopped:
        uplink.flush()

    assert "revoked" in str(stopped.value)
    assert "twin-agent enroll --server" in str(stopped.value)
    assert spool.depth("agent-01") == 2  # kept, to be sent once enrolled again
    with pytest.raises(AgentStopped):
        uplink.flush()


def test_a_throttled_batch_is_kept_and_waits_at_least_retry_after(enroll, django_http, spool, settings):
    settings.TWIN_INGEST_RATE_PER_MINUTE = 1
    credential = enroll("agent-01")
    spool_samples(spool, "agent-01", 2)
    uplink = uplink_for(credential, django_http, spool, batch_max_samples=1)

    report = uplink.flush()

    assert report.batches == 1
    assert "429" in report.failure
    assert uplink.waiting() >= 50  # DRF asks for about a minute
    assert spool.depth("agent-01") == 1
    assert uplink.flush().waiting  # nothing is sent before then


def test_a_host_waiting_for_approval_keeps_its_samples_and_retries(enroll, django_http, spool, settings):
    settings.TWIN_REQUIRE_APPROVAL = True
    credential = enroll("agent-new")
    spool_samples(spool, "agent-new", 1)
    uplink = uplink_for(credential, django_http, spool)

    report = uplink.flush()

    assert "approve" in report.failure
    assert uplink.waiting() > 0
    assert spool.depth("agent-new") == 1


def test_an_unreachable_server_is_retried_with_growing_jittered_delays(tmp_path):
    from tests.e2e.conftest import free_port

    spool = Spool(tmp_path / "spool.sqlite3")
    spool.add(stream="agent-01", sample=b"{}")
    http = Http(f"http://127.0.0.1:{free_port()}", timeout=2)
    credential = type("C", (), {"hostname": "agent-01", "key_id": "tak_x", "signing_secret": "s"})()
    uplink = uplink_for(credential, http, spool, backoff=Backoff(base=1, cap=8))

    delays = []
    for _ in range(4):
        report = uplink.flush(force=True)
        assert "unreachable" in report.failure
        delays.append(uplink.waiting())
    # Each delay in [ceiling/2, ceiling] for ceilings 1, 2, 4, 8 (less the moments spent between).
    for delay, ceiling in zip(delays, (1, 2, 4, 8), strict=True):
        assert ceiling / 2 - 0.1 <= delay <= ceiling
    assert spool.depth("agent-01") == 1


def test_backoff_honours_retry_after_and_its_cap():
    backoff = Backoff(base=1, cap=4, rng=lambda: 1.0)
    assert [backoff.next_delay() for _ in range(4)] == [1, 2, 4, 4]
    backoff.reset()
    assert backoff.next_delay(retry_after=3) == pytest.approx(3.3)
    backoff.reset()
    assert backoff.next_delay() == 1


def test_a_retry_after_beyond_the_configured_cap_waits_only_the_cap():
    backoff = Backoff(base=1, cap=4, rng=lambda: 1.0)
    for hostile in (30, 1e12, float("inf"), float("nan"), -5):
        backoff.reset()
        assert backoff.next_delay(retry_after=hostile) <= 4.4


def test_a_retry_after_that_is_no_number_of_seconds_is_ignored():
    for hostile in ("inf", "-inf", "nan", "1e999", "soon", "Wed, 99 Oct 2026 07:28:00 GMT"):
        assert Reply(503, b"", {"retry-after": hostile}).retry_after() is None
    assert Reply(503, b"", {"retry-after": "-5"}).retry_after() == 0
    assert Reply(503, b"", {"retry-after": "1e12"}).retry_after() == 1e12  # Backoff bounds it


def test_retry_after_is_read_as_seconds_or_as_an_http_date():
    assert Reply(429, b"", {"retry-after": "7"}).retry_after() == 7
    date = "Wed, 21 Oct 2026 07:28:00 GMT"
    assert Reply(503, b"", {"retry-after": date}).retry_after(now=1792567670.0) == pytest.approx(10)
    assert Reply(503, b"", {}).retry_after() is None


@pytest.mark.e2e
def test_enrolled_with_the_cli_the_agent_posts_a_gzipped_signed_batch_to_the_live_server(signed_twin, tmp_path):
    from hosts.services import enrollment_key_create

    _, key = enrollment_key_create(name="e2e")
    state_dir = tmp_path / "state"
    enrolled = agent_enroll_cli(server=signed_twin.url, key=key, state_dir=state_dir, hostname="live-01")
    assert enrolled.returncode == 0, enrolled.stderr
    assert stat.S_IMODE(os.stat(state_dir / "credential.json").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(state_dir).st_mode) == 0o700
    credential = credential_load(state_dir=state_dir)
    spool = Spool(state_dir / "spool.sqlite3")
    stamps = spool_samples(spool, "live-01", 120)
    http = Http(signed_twin.url)
    uplink = uplink_for(credential, http, spool)
    assert len(spool.batch_next(stream="live-01", session="session-1", max_samples=500).body) > 16 * 1024

    started = time.monotonic()
    report = uplink.flush()

    assert (report.batches, report.samples, report.failure) == (1, 120, None), signed_twin.output()
    assert time.monotonic() - started < 10
    stored = list(Sample.objects.filter(host__hostname="live-01").values_list("timestamp", flat=True))
    assert sorted(iso(t) for t in stored) == sorted(stamps)
