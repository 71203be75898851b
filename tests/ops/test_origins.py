"""One origins setting for the HTTP API's CORS headers and Socket.IO; its former name still works."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

import pytest

from tests.test_deploy import ROOT

DASHBOARD = "http://dash.example:3000"


def settings_in_a_fresh_process(**env: str) -> dict:
    """The origin settings as a server started with ``env`` would read them."""
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({k: getattr(s, k) for k in "
        "('TWIN_ALLOWED_ORIGINS', 'CORS_ALLOWED_ORIGINS', 'CORS_ALLOW_ALL_ORIGINS')}))"
    )
    base = {k: v for k, v in os.environ.items() if k not in {"TWIN_ALLOWED_ORIGINS", "TWIN_SOCKETIO_ORIGINS"}}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "twinsite.settings", "SECRET_KEY": secrets.token_urlsafe(50), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_allowed_origins_drive_socketio_and_the_http_api_alike():
    read = settings_in_a_fresh_process(TWIN_ALLOWED_ORIGINS=f"{DASHBOARD},https://ops.example")
    assert read["TWIN_ALLOWED_ORIGINS"] == [DASHBOARD, "https://ops.example"]
    assert read["CORS_ALLOWED_ORIGINS"] == read["TWIN_ALLOWED_ORIGINS"]
    assert read["CORS_ALLOW_ALL_ORIGINS"] is False


def test_the_former_socketio_setting_is_still_read():
    read = settings_in_a_fresh_process(TWIN_SOCKETIO_ORIGINS=DASHBOARD)
    assert read["TWIN_ALLOWED_ORIGINS"] == read["CORS_ALLOWED_ORIGINS"] == [DASHBOARD]


def test_the_new_setting_wins_over_the_former_one():
    read = settings_in_a_fresh_process(TWIN_ALLOWED_ORIGINS=DASHBOARD, TWIN_SOCKETIO_ORIGINS="http://old.example")
    assert read["TWIN_ALLOWED_ORIGINS"] == [DASHBOARD]


def test_a_star_allows_every_origin():
    read = settings_in_a_fresh_process(TWIN_ALLOWED_ORIGINS="*")
    assert read["CORS_ALLOW_ALL_ORIGINS"] is True


@pytest.fixture
def dashboard_allowed(settings):
    settings.CORS_ALLOWED_ORIGINS = [DASHBOARD]
    settings.CORS_ALLOW_ALL_ORIGINS = False


def test_a_preflight_from_an_allowed_origin_may_send_a_token(client, dashboard_allowed):
    response = client.options(
        "/api/twin/state",
        headers={
            "Origin": DASHBOARD,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == DASHBOARD
    assert "authorization" in response["Access-Control-Allow-Headers"]
    assert "GET" in response["Access-Control-Allow-Methods"]


@pytest.mark.django_db
def test_an_allowed_origin_gets_cors_headers_and_may_read_the_request_id(client, dashboard_allowed, open_twin):
    response = client.get("/api/twin/state", headers={"Origin": DASHBOARD})
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == DASHBOARD
    exposed = {h.strip().lower() for h in response["Access-Control-Expose-Headers"].split(",")}
    assert {"x-request-id", "retry-after"} <= exposed
    assert "Access-Control-Allow-Credentials" not in response


@pytest.mark.django_db
def test_another_origin_gets_no_cors_headers(client, dashboard_allowed, open_twin):
    response = client.get("/api/twin/state", headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in response


def test_cors_covers_the_api_only(client, dashboard_allowed):
    response = client.get("/healthz", headers={"Origin": DASHBOARD})
    assert "Access-Control-Allow-Origin" not in response
