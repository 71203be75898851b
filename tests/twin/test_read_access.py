"""Who may read the twin over HTTP, and the API schema readers and agents are given."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from tests.conftest import sample_dict

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader(django_user_model):
    return django_user_model.objects.create_user("reader", password="a-long-password-1")


def test_the_twin_is_private_by_default(client):
    response = client.get("/api/twin/state")
    assert response.status_code in (401, 403)
    assert response.json()["error"] == "not_authenticated"


def test_a_logged_in_user_reads_the_twin(client, reader):
    client.force_login(reader)
    assert client.get("/api/twin/state").json()["type"] == "twin-state"


def test_an_api_token_reads_the_twin(client, reader):
    token = Token.objects.create(user=reader)
    response = client.get("/api/twin/state", headers={"Authorization": f"Token {token.key}"})
    assert response.status_code == 200


def test_a_wrong_api_token_is_a_401(client):
    response = client.get("/api/twin/state", headers={"Authorization": "Token nope"})
    assert response.status_code == 401
    assert response.json()["error"] == "authentication_failed"


def test_an_inactive_users_token_reads_nothing(client, reader):
    token = Token.objects.create(user=reader)
    reader.is_active = False
    reader.save()
    assert client.get("/api/twin/state", headers={"Authorization": f"Token {token.key}"}).status_code == 401


def test_public_read_opens_the_twin_to_anyone(client, settings):
    settings.TWIN_PUBLIC_READ = True
    assert client.get("/api/twin/state").status_code == 200


def test_a_read_token_never_grants_writes(client, reader):
    token = Token.objects.create(user=reader)
    response = client.post(
        "/api/metrics/batch",
        data={"samples": [sample_dict()]},
        content_type="application/json",
        headers={"Authorization": f"Token {token.key}"},
    )
    assert response.status_code == 401


def test_the_openapi_schema_is_served_and_names_every_operation(client):
    response = client.get("/api/schema/", headers={"Accept": "application/json"})
    assert response.status_code == 200
    schema = response.json()
    assert {"/api/metrics/batch", "/api/twin/state", "/api/hosts/register"} <= set(schema["paths"])
    components = schema["components"]["schemas"]
    assert {"MetricsBatch", "SampleIn", "TwinState", "HostRegistrationRequest", "HostRegistrationResponse"} <= set(
        components
    )
    assert set(components["MetricsBatch"]["properties"]) == {"samples", "agent_session", "sequence"}


def test_the_api_docs_page_opens(client):
    assert client.get("/api/docs/").status_code == 200


def test_the_schema_is_valid_openapi_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert (tmp_path / "schema.yaml").read_text().startswith("openapi:")
