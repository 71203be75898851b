"""Delivery: one signed notice per firing and per resolve, to a real HTTP receiver on loopback, retried, sent once."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
from datetime import timedelta

import pytest
from django.db import connection

from alerts.delivery import backoff_seconds, notices_deliver, webhook_signature
from alerts.models import MaintenanceWindow, Notification, Receiver, Silence
from hosts.models import Rack
from tests.alerts.conftest import SECRET, Hook
from tests.conftest import ingest_at, sample_dict

pytestmark = pytest.mark.django_db

CPU = {"name": "Cpu", "field": "cpu_load", "operator": ">", "threshold": 90.0, "clear_threshold": 80.0}


def _cpu(clock, value: float, hostname: str = "web-01", rack: str = "R1") -> None:
    """A sample of this CPU load a second later than the previous one."""
    clock.now += timedelta(seconds=1)
    ingest_at([sample_dict(hostname, at=clock.now, cpu_load=value, rack=rack)], received_at=clock.now)


def test_a_firing_and_its_resolve_each_reach_the_webhook_once_signed(clock, only_rules, hook):
    only_rules(CPU)
    _cpu(clock, 95.0)
    clock.evaluate()
    assert notices_deliver(now=clock.now).sent == 1
    assert notices_deliver(now=clock.now).sent == 0  # nothing twice
    _cpu(clock, 10.0)
    clock.evaluate(1)
    assert notices_deliver(now=clock.now).sent == 1
    firing, resolved = hook.bodies()
    assert firing["type"] == "alert.firing" and resolved["type"] == "alert.resolved"
    assert firing["data"]["rule"] == "Cpu" and firing["data"]["hostname"] == "web-01"
    assert firing["data"]["endsAt"] is None and resolved["data"]["endsAt"] is not None
    assert firing["data"]["startsAt"] == resolved["data"]["startsAt"]
    headers, body = hook.received[0]
    # The receiver's check, as the Standard Webhooks libraries do it.
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == f"v1,{expected}"
    assert headers["webhook-id"] != hook.received[1][0]["webhook-id"]


def test_a_pending_alert_that_clears_is_never_notified(clock, only_rules, hook):
    only_rules({**CPU, "for_seconds": 60.0})
    _cpu(clock, 95.0)
    clock.evaluate()
    _cpu(clock, 10.0)
    clock.evaluate(1)
    assert notices_deliver(now=clock.now).sent == 0 and hook.received == []


def test_a_receiver_that_fails_gets_the_notice_again_after_a_backoff_with_the_same_id(clock, only_rules, hook):
    only_rules(CPU)
    hook.statuses = [500]
    _cpu(clock, 95.0)
    clock.evaluate()
    assert notices_deliver(now=clock.now).retried == 1
    notice = Notification.objects.get()
    assert notice.last_error.startswith("500") and notice.attempts == 1
    assert notices_deliver(now=clock.now + timedelta(seconds=1)).sent == 0  # still backing off
    assert notices_deliver(now=clock.now + timedelta(seconds=backoff_seconds(1))).sent == 1
    assert [h["webhook-id"] for h, _ in hook.received] == [f"ntf_{notice.pk}"] * 2
    notice.refresh_from_db()
    assert notice.state == "sent" and notice.attempts == 2 and notice.last_error == ""


def test_a_receiver_that_never_answers_is_given_up_after_the_last_try(clock, only_rules, settings):
    settings.TWIN_ALERTS_ALLOW_PRIVATE_RECEIVERS = True
    settings.TWIN_ALERTS_ATTEMPTS_MAX = 2
    settings.TWIN_ALERTS_SEND_TIMEOUT_SECONDS = 0.5
    Receiver.objects.create(name="closed", url="http://127.0.0.1:9/hook")
    only_rules(CPU)
    _cpu(clock, 95.0)
    clock.evaluate()
    notices_deliver(now=clock.now)
    assert notices_deliver(now=clock.now + timedelta(seconds=10)).failed == 1
    assert Notification.objects.get().state == "failed"


def test_a_loopback_webhook_is_refused_unless_the_setting_allows_it(clock, only_rules, settings):
    settings.TWIN_ALERTS_ALLOW_PRIVATE_RECEIVERS = False
    hook = Hook()
    try:
        Receiver.objects.create(name="inside", url=hook.url)
        only_rules(CPU)
        _cpu(clock, 95.0)
        clock.evaluate()
        notices_deliver(now=clock.now)
        assert hook.received == []
        assert "not a public address" in Notification.objects.get().last_error
    finally:
        hook.close()


def test_a_silence_records_the_alert_but_sends_nothing_not_even_its_resolve(clock, only_rules, hook):
    only_rules(CPU)
    Silence.objects.create(
        matchers=[{"name": "hostname", "value": "web-01"}],
        starts_at=clock.now - timedelta(minutes=1),
        ends_at=clock.now + timedelta(hours=1),
        comment="reimaging web-01",
    )
    _cpu(clock, 95.0)
    _cpu(clock, 95.0, hostname="web-02")
    clock.evaluate()
    _cpu(clock, 10.0)
    clock.evaluate(1)
    notices_deliver(now=clock.now)
    assert [b["data"]["hostname"] for b in hook.bodies()] == ["web-02"]
    assert Notification.objects.filter(state="suppressed").count() == 1


def test_a_weekly_maintenance_window_of_a_rack_suppresses_its_hosts_notices(clock, only_rules, hook):
    only_rules(CPU)
    _cpu(clock, 10.0, hostname="a-01", rack="A")
    window = MaintenanceWindow.objects.create(
        name="patch Tuesday",
        starts_at=clock.now - timedelta(days=7, minutes=5),
        ends_at=clock.now - timedelta(days=7) + timedelta(hours=1),
        weekly=True,
    )
    window.racks.add(Rack.objects.get(name="A"))
    _cpu(clock, 95.0, hostname="a-01", rack="A")
    _cpu(clock, 95.0, hostname="b-01", rack="B")
    clock.evaluate()
    notices_deliver(now=clock.now)
    assert [b["data"]["hostname"] for b in hook.bodies()] == ["b-01"]


def test_the_signature_follows_the_standard_webhooks_example():
    # The example of the Standard Webhooks specification (its README's "Verifying" section).
    signature = webhook_signature(
        secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        msg_id="msg_p5jXN8AQM9LWM0D4loKWxJek",
        timestamp=1614265330,
        body=b'{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_senders_at_once_send_each_notice_once(clock, only_rules, hook):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite runs one at a time)")
    only_rules(CPU)
    ingest_at([sample_dict(f"web-{i:02}", at=clock.now, cpu_load=95.0) for i in range(30)], received_at=clock.now)
    clock.evaluate()
    barrier = threading.Barrier(3)

    def send() -> None:
        try:
            barrier.wait()
            notices_deliver(now=clock.now)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [h["webhook-id"] for h, _ in hook.received]
    assert len(ids) == 30 and len(set(ids)) == 30
    assert Notification.objects.filter(state="sent").count() == 30
