"""POST /api/hosts/register: enrollment keys buy a host its own credential."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from hosts.credentials import enrollment_key_hash
from hosts.models import AgentCredential, EnrollmentKey, Host, Link
from hosts.services import enrollment_key_create

pytestmark = pytest.mark.django_db


def test_registering_a_new_host_gives_it_credentials_and_what_the_agent_needs(register, settings):
    response = register("titan-01", display_name="Titan 01", ip="10.0.0.10", rack="R1")
    assert response.status_code == 201
    body = response.json()
    assert body["hostname"] == "titan-01"
    assert body["keyId"].startswith("tak_") and len(body["signingSecret"]) == 64
    assert body["heartbeatIntervalSeconds"] == settings.TWIN_HEARTBEAT_SECONDS
    assert body["twinId"] == settings.TWIN_ID
    assert body["serverTime"].endswith("Z")
    assert body["approved"] is True
    host = Host.objects.get(hostname="titan-01")
    assert (host.display_name, host.ip, host.rack.name, host.platform) == (
        "Titan 01",
        "10.0.0.10",
        "R1",
        "Linux-x86_64",
    )
    assert Link.objects.filter(source__hostname="core-switch", target=host).exists()


def test_the_signing_secret_is_not_stored(register):
    secret = register().json()["signingSecret"]
    credential = AgentCredential.objects.get()
    assert all(secret not in str(getattr(credential, f.attname)) for f in AgentCredential._meta.concrete_fields)


def test_registering_again_rotates_the_credential(register):
    first = register().json()
    second = register()
    assert second.status_code == 200
    assert second.json()["keyId"] != first["keyId"]
    assert AgentCredential.objects.filter(revoked_at__isnull=True).get().key_id == second.json()["keyId"]
    assert AgentCredential.objects.get(key_id=first["keyId"]).revoked_at is not None


def test_an_admin_chosen_display_name_survives_registration(register):
    Host.objects.create(hostname="titan-01", display_name="Chosen")
    register(display_name="Agent's idea")
    assert Host.objects.get(hostname="titan-01").display_name == "Chosen"


def test_without_an_enrollment_key_registration_is_a_401(client):
    response = client.post("/api/hosts/register", data={}, content_type="application/json")
    assert response.status_code == 401
    assert response.json()["error"] == "enrollment_key_required"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"revoked_at": timezone.now()}, "enrollment_key_revoked"),
        ({"expires_at": timezone.now() - timedelta(seconds=1)}, "enrollment_key_expired"),
        ({"max_uses": 1, "uses": 1}, "enrollment_key_used_up"),
    ],
)
def test_a_revoked_expired_or_used_up_enrollment_key_is_refused(register, change, code):
    key, secret = enrollment_key_create(name="k")
    EnrollmentKey.objects.filter(pk=key.pk).update(**change)
    response = register(key=secret)
    assert response.status_code == 401
    assert response.json()["error"] == code
    assert not Host.objects.filter(hostname="titan-01").exists()


def test_an_unknown_enrollment_key_is_refused(register):
    response = register(key="tek_not-a-key")
    assert (response.status_code, response.json()["error"]) == (401, "unknown_enrollment_key")


def test_a_refused_key_is_a_401_that_asks_for_an_enrollment_key_and_a_virtual_node_a_403_that_does_not(register):
    refused = register(key="tek_not-a-key")
    assert refused.headers["WWW-Authenticate"] == 'Bearer realm="enrollment"'
    assert refused.json() == {
        "error": "unknown_enrollment_key",
        "detail": "The enrollment key is not known to this twin.",
    }
    virtual = register("core-switch")
    assert virtual.status_code == 403
    assert "WWW-Authenticate" not in virtual.headers


def test_a_key_with_a_use_limit_counts_its_uses(register):
    key, secret = enrollment_key_create(name="k", max_uses=2)
    assert register("a-1", key=secret).status_code == 201
    assert register("a-2", key=secret).status_code == 201
    assert register("a-3", key=secret).status_code == 401
    key.refresh_from_db()
    assert key.uses == 2


@pytest.mark.parametrize(
    "fields",
    [{"hostname": "not valid"}, {"ip": "10.0.0.300"}, {"platform": 5}, {"unexpected": 1}],
    ids=["hostname", "ip", "platform-type", "unknown-field"],
)
def test_a_malformed_registration_is_a_400_with_a_reason(register, fields):
    fields = {"hostname": "titan-01", **fields}
    response = register(fields.pop("hostname"), **fields)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_registration"
    assert response.json()["detail"]


def test_with_approval_required_a_new_host_is_pending(register, settings):
    settings.TWIN_REQUIRE_APPROVAL = True
    body = register().json()
    assert body["approved"] is False
    assert Host.objects.get(hostname="titan-01").approved is False


def test_with_approval_required_a_host_an_admin_created_is_not_pending(register, settings):
    settings.TWIN_REQUIRE_APPROVAL = True
    Host.objects.create(hostname="titan-01")
    assert register().json()["approved"] is True


def test_the_command_prints_a_key_once_and_stores_only_its_hash(capsys):
    call_command("create_enrollment_key", "--name", "rollout", "--max-uses", "5", "--expires-in-hours", "2")
    secret = capsys.readouterr().out.strip()
    key = EnrollmentKey.objects.get(name="rollout")
    assert secret.startswith("tek_") and key.key_hash == enrollment_key_hash(secret)
    assert key.max_uses == 5 and key.expires_at > timezone.now()
    assert key.prefix == secret[:12] and secret not in key.key_hash


# --- hostile registrations ------------------------------------------------------------------


@pytest.mark.parametrize("hostname", ["core-switch", "Core-Switch"])
def test_a_virtual_node_cannot_be_registered_nor_given_a_credential(register, hostname):
    core = Host.objects.get(hostname="core-switch")
    response = register(hostname, platform="evil")
    assert (response.status_code, response.json()["error"]) == (403, "virtual_host")
    core.refresh_from_db()
    assert core.platform == "virtual-switch"
    assert not AgentCredential.objects.exists()
    assert EnrollmentKey.objects.get().uses == 0


def test_a_host_an_admin_marks_virtual_loses_its_credentials(register, admin_client):
    assert register("switch-2").status_code == 201
    host = Host.objects.get(hostname="switch-2")
    form = {
        "hostname": "switch-2",
        "is_virtual": "on",
        "approved": "on",
        "links_out-TOTAL_FORMS": "0",
        "links_out-INITIAL_FORMS": "0",
    }
    assert admin_client.post(f"/admin/hosts/host/{host.pk}/change/", form).status_code == 302
    assert not AgentCredential.objects.filter(host=host, revoked_at__isnull=True).exists()
    assert register("switch-2").status_code == 403


@pytest.mark.parametrize("hostname", ["titan-01\n", "core-switch\n", "titan-01 ", " titan-01", "titan-01\r\n"])
def test_a_hostname_with_whitespace_or_a_trailing_newline_is_refused_not_stored_beside_the_real_one(register, hostname):
    assert register("titan-01").status_code == 201
    response = register(hostname)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_registration")
    assert sorted(Host.objects.values_list("hostname", flat=True)) == ["core-switch", "titan-01"]


def test_a_hostname_that_lower_cases_to_ascii_from_another_script_is_refused(register):
    # U+212A KELVIN SIGN lower-cases to an ASCII "k".
    response = register("\u212a8s-node")
    assert response.status_code == 400
    assert not Host.objects.filter(hostname="k8s-node").exists()


def test_an_ip_with_a_zone_is_refused_not_a_500(register):
    response = register("titan-01", ip="fe80::1%eth0\u202e")
    assert (response.status_code, response.json()["error"]) == (400, "invalid_registration")


def test_the_enrollment_key_is_checked_before_the_body_is_read(client):
    # A corrupt gzip body would be a 400 if the server read it: a stranger gets the 401 first.
    response = client.post(
        "/api/hosts/register",
        data=b"\x1f\x8b not gzip at all",
        content_type="application/json",
        headers={"Authorization": "Bearer tek_not-a-key", "Content-Encoding": "gzip"},
    )
    assert (response.status_code, response.json()["error"]) == (401, "unknown_enrollment_key")


def test_a_registration_body_over_64_kib_is_a_413_even_inflated(client, enrollment_key):
    import gzip

    import orjson

    body = orjson.dumps({"hostname": "titan-01", "platform": "x", "agent_version": "1", "pad": " " * 70_000})
    for data, headers in ((body, {}), (gzip.compress(body), {"Content-Encoding": "gzip"})):
        response = client.post(
            "/api/hosts/register",
            data=data,
            content_type="application/json",
            headers={"Authorization": f"Bearer {enrollment_key}", **headers},
        )
        assert (response.status_code, response.json()["error"]) == (413, "payload_too_large")
    assert not Host.objects.filter(hostname="titan-01").exists()


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            b'{"hostname": "titan-01", "platform": "x", "agent_version": "1", "rack": '
            + b"[" * 1200
            + b"]" * 1200
            + b"}",
            "json_too_deep",
        ),
        (
            b'{"hostname": "titan-01", "platform": "x", "agent_version": "1", "extra": '
            + b"[" * 1200
            + b"]" * 1200
            + b"}",
            "json_too_deep",
        ),
        (b'{"hostname": "titan-01", "platform": "Linux-\xe9", "agent_version": "1"}', "invalid_registration"),
        (b'{"hostname": "titan-\xe9", "platform": "x", "agent_version": "1"}', "invalid_registration"),
    ],
    ids=["nested-field", "nested-unknown-field", "invalid-utf8-platform", "invalid-utf8-hostname"],
)
def test_deep_nesting_and_invalid_utf8_are_a_400_not_a_500(client, enrollment_key, body, error):
    """Nesting beyond the one depth limit is refused before decoding (common.jsondepth), as everywhere."""
    response = client.post(
        "/api/hosts/register",
        data=body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {enrollment_key}"},
    )
    assert (response.status_code, response.json()["error"]) == (400, error)
    assert not Host.objects.filter(hostname="titan-01").exists()
