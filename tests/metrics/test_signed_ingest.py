"""Signed, sequenced batches: who may write what, and how often."""

from __future__ import annotations

import time

import orjson
import pytest

from hosts.credentials import signature_compute
from hosts.models import AgentCredential, Host
from metrics.models import Sample
from tests.conftest import sample_dict, seconds_ago

pytestmark = pytest.mark.django_db


def test_a_signed_batch_is_accepted_in_the_seed_shape(make_agent):
    agent = make_agent()
    response = agent.post()
    assert response.status_code == 202
    assert response.json()["accepted"] == 1
    assert Sample.objects.get().host.hostname == "titan-01"


def test_an_unsigned_batch_is_refused_in_signed_mode(post_batch):
    response = post_batch([sample_dict()])
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"
    assert "TWIN_AGENT_AUTH" in response.json()["detail"]
    assert not Sample.objects.exists()


def test_an_unsigned_batch_is_accepted_in_open_mode(post_batch, settings):
    settings.TWIN_AGENT_AUTH = "open"
    assert post_batch([sample_dict()]).status_code == 202


def test_a_signature_over_a_body_changed_by_one_byte_fails(make_agent):
    agent = make_agent()
    body = agent.body([sample_dict(agent.hostname, cpu_load=42.5)])
    headers = agent.headers(body)
    tampered = body.replace(b"42.5", b"42.6")
    assert len(tampered) == len(body)
    response = agent.send(tampered, headers)
    assert response.status_code == 401
    assert response.json()["error"] == "bad_signature"
    assert not Sample.objects.exists()


def test_a_signature_made_with_another_secret_fails(make_agent):
    agent = make_agent()
    agent.secret = "0" * 64
    assert agent.post().json()["error"] == "bad_signature"


@pytest.mark.parametrize("offset", [-301, 301])
def test_a_timestamp_outside_the_window_fails(make_agent, offset):
    agent = make_agent()
    body = agent.body([sample_dict(agent.hostname)])
    response = agent.send(body, agent.headers(body, timestamp=int(time.time()) + offset))
    assert response.status_code == 401
    assert response.json()["error"] == "stale_timestamp"


def test_a_timestamp_that_is_not_unix_seconds_fails(make_agent):
    agent = make_agent()
    body = agent.body([sample_dict(agent.hostname)])
    headers = {**agent.headers(body), "X-Twin-Timestamp": "yesterday"}
    assert agent.send(body, headers).json()["error"] == "bad_timestamp"


def test_an_incomplete_set_of_signature_headers_fails(make_agent):
    agent = make_agent()
    body = agent.body([sample_dict(agent.hostname)])
    headers = agent.headers(body)
    del headers["X-Twin-Signature"]
    response = agent.send(body, headers)
    assert (response.status_code, response.json()["error"]) == (401, "incomplete_signature")


def test_an_unknown_key_id_fails(make_agent):
    agent = make_agent()
    body = agent.body([sample_dict(agent.hostname)])
    response = agent.send(body, agent.headers(body, key_id="tak_000000000000000000000000"))
    assert (response.status_code, response.json()["error"]) == (401, "unknown_key")


def test_a_replayed_sequence_stores_nothing_and_says_duplicate(make_agent):
    agent = make_agent()
    body = agent.body([sample_dict(agent.hostname)])
    assert agent.send(body, agent.headers(body)).json()["accepted"] == 1
    replay = agent.send(body, agent.headers(body))
    assert replay.status_code == 202
    assert replay.json()["accepted"] == 0
    assert replay.json()["duplicate"] is True
    assert Sample.objects.count() == 1


def test_a_replayed_sequence_with_new_samples_stores_nothing(make_agent):
    agent = make_agent()
    agent.post([sample_dict(agent.hostname, at=seconds_ago(20))])
    agent.sequence -= 1
    response = agent.post([sample_dict(agent.hostname, at=seconds_ago(10))])
    assert response.json()["duplicate"] is True
    assert Sample.objects.count() == 1


def test_a_new_agent_session_may_start_its_sequence_again(make_agent):
    agent = make_agent()
    agent.post([sample_dict(agent.hostname, at=seconds_ago(20))])
    agent.session, agent.sequence = "restarted", 0
    assert agent.post([sample_dict(agent.hostname, at=seconds_ago(10))]).json()["accepted"] == 1


def test_a_signed_batch_without_session_and_sequence_is_a_400(make_agent):
    agent = make_agent()
    body = orjson.dumps({"samples": [sample_dict(agent.hostname)]})
    response = agent.send(body, agent.headers(body))
    assert (response.status_code, response.json()["error"]) == (400, "malformed_batch")


def test_rotated_credentials_stop_working_at_once(make_agent, register):
    agent = make_agent()
    assert agent.post([sample_dict(agent.hostname, at=seconds_ago(20))]).status_code == 202
    register(agent.hostname)
    response = agent.post([sample_dict(agent.hostname, at=seconds_ago(10))])
    assert (response.status_code, response.json()["error"]) == (401, "revoked")


def test_a_credential_revoked_by_an_admin_stops_working(make_agent):
    agent = make_agent()
    AgentCredential.objects.update(revoked_at=seconds_ago(0))
    assert agent.post().json()["error"] == "revoked"


def test_host_a_cannot_write_host_bs_samples(make_agent):
    agent_a = make_agent("host-a")
    make_agent("host-b")
    response = agent_a.post([sample_dict("host-a"), sample_dict("host-b")])
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 1
    assert body["rejected"][0]["index"] == 1
    assert body["rejected"][0]["reason"].startswith("foreign hostname")
    assert list(Sample.objects.values_list("host__hostname", flat=True)) == ["host-a"]


def test_a_batch_only_for_a_foreign_host_is_a_400(make_agent):
    agent = make_agent("host-a")
    response = agent.post([sample_dict("host-b")])
    assert response.status_code == 400
    assert not Host.objects.filter(hostname="host-b").exists()


def test_a_host_granted_reporting_rights_may_write_for_the_other_host(make_agent):
    poller = make_agent("poller-1")
    Host.objects.get(hostname="poller-1").reports_for.add(Host.objects.get(hostname="core-switch"))
    response = poller.post([sample_dict("core-switch")])
    assert response.json()["accepted"] == 1


def test_a_pending_hosts_batches_are_refused_until_approved(make_agent, settings):
    settings.TWIN_REQUIRE_APPROVAL = True
    agent = make_agent()
    response = agent.post()
    assert (response.status_code, response.json()["error"]) == (403, "pending_approval")
    Host.objects.filter(hostname=agent.hostname).update(approved=True)
    assert agent.post().status_code == 202


def test_an_agent_credential_cannot_read_the_twin(make_agent, client):
    agent = make_agent()
    response = client.get("/api/twin/state", headers=agent.headers(b""))
    assert response.status_code in (401, 403)


def test_auth_errors_never_echo_the_secret(make_agent):
    agent = make_agent()
    agent_secret = agent.secret
    agent.secret = "f" * 64
    response = agent.post()
    assert agent_secret not in response.content.decode()


# --- spoofed identities and headers -----------------------------------------------------------


def test_a_credential_without_reporting_rights_cannot_report_for_a_virtual_node(make_agent):
    agent = make_agent("titan-01")
    response = agent.post([sample_dict("core-switch", platform="evil")])
    assert response.status_code == 400
    assert response.json()["rejected"][0]["reason"].startswith("virtual host")
    assert Host.objects.get(hostname="core-switch").platform == "virtual-switch"
    assert not Sample.objects.exists()


def test_an_unsigned_batch_cannot_report_for_a_virtual_node_even_in_open_mode(post_batch, settings):
    settings.TWIN_AGENT_AUTH = "open"
    response = post_batch([sample_dict("core-switch"), sample_dict("titan-01")])
    assert response.status_code == 202
    assert response.json()["rejected"][0]["reason"].startswith("virtual host")
    assert list(Sample.objects.values_list("host__hostname", flat=True)) == ["titan-01"]


def test_a_credential_of_a_host_made_virtual_behind_the_admins_back_is_refused(make_agent):
    agent = make_agent("titan-01")
    Host.objects.filter(hostname="titan-01").update(is_virtual=True)
    response = agent.post()
    assert (response.status_code, response.json()["error"]) == (403, "virtual_host")


@pytest.mark.parametrize(
    "stamp",
    ["1_795_957_272", "+{now}", " {now}", "{now} ", "0{now}", "{now}.0", "\u0661\u0667\u0669\u0665", "-0", ""],
    ids=["underscores", "plus", "space-before", "space-after", "leading-zero", "fraction", "arabic", "minus", "empty"],
)
def test_a_timestamp_must_be_canonical_decimal_digits(make_agent, stamp):
    agent = make_agent()
    body = agent.body([sample_dict(agent.hostname)])
    now = str(int(time.time()))
    stamp = stamp.format(now=now)
    headers = {**agent.headers(body), "X-Twin-Timestamp": stamp}
    headers["X-Twin-Signature"] = signature_compute(secret=agent.secret, timestamp=stamp, body=body)
    response = agent.send(body, headers)
    assert response.status_code == 401
    assert response.json()["error"] in ("bad_timestamp", "incomplete_signature")
    assert not Sample.objects.exists()


@pytest.mark.parametrize("key_id", ["tak_\x00abc", "tak_" + "0" * 23 + "\x00", "x" * 5000, "tak_\u202e"])
def test_a_malformed_key_id_is_unknown_not_a_500(make_agent, key_id):
    agent = make_agent()
    body = agent.body([sample_dict(agent.hostname)])
    response = agent.send(body, agent.headers(body, key_id=key_id))
    assert (response.status_code, response.json()["error"]) == (401, "unknown_key")
