"""common.middleware: JSON errors whatever answered, and no 5xx for what a client sent, on every path."""

from __future__ import annotations

import logging

import pytest
from django.db import DataError
from django.test import Client

from common.middleware import client_fault

pytestmark = pytest.mark.django_db

NUL_COOKIE = "abcdefgh\x00ijklmnop"
PAGES = ["/api/twin/state", "/admin/", "/admin/login/", "/admin/hosts/host/", "/api/health"]


@pytest.mark.parametrize("path", PAGES)
def test_a_session_cookie_with_a_nul_is_no_session_not_a_500(client, path):
    client.cookies["sessionid"] = NUL_COOKIE
    response = client.get(path)
    assert response.status_code < 500
    assert response.status_code in (200, 302, 401, 403)


@pytest.mark.parametrize("path", PAGES)
def test_a_session_cookie_of_another_shape_is_no_session(client, path):
    # Header values reach Django as latin-1 text, whatever bytes the client sent.
    for value in ["x" * 41, "ABCDEFGHIJKLMNOPQRSTUVWXYZ123456", "\x85\x9b" * 16, "a b c d e f g h"]:
        client.cookies["sessionid"] = value
        assert client.get(path).status_code < 500


@pytest.mark.parametrize("token", ["\x00abc", "a" * 41, "abc\x85", "abc\xe9"])
def test_an_api_token_that_could_not_be_stored_is_a_401_not_a_500(client, token):
    response = client.get("/api/twin/state", HTTP_AUTHORIZATION=f"Token {token}")
    assert (response.status_code, response.json()["error"]) == (401, "authentication_failed")


@pytest.mark.parametrize(
    "url",
    ["/admin/hosts/host/?q=%00", "/admin/hosts/host/?platform=%00", "/api/twin/state?x=%00", "/admin/%00/"],
)
def test_a_nul_in_the_url_is_a_json_400(admin_client, url):
    response = admin_client.get(url)
    assert response.status_code == 400
    assert response.json() == {"error": "bad_request", "detail": "The URL holds a NUL character."}


@pytest.mark.parametrize(
    ("method", "path"),
    [("put", "/api/schema/"), ("delete", "/api/schema/"), ("put", "/api/docs/"), ("get", "/admin/logout/")],
)
def test_a_wrong_method_is_a_json_405_everywhere(admin_client, method, path):
    # Logging out is POST only: a Django view's own (HTML) 405.
    response = getattr(admin_client, method)(path)
    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == "method_not_allowed"
    assert response.has_header("Allow")


def test_an_error_is_json_whatever_the_client_accepts(client):
    response = client.put("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi")
    assert (response.status_code, response["Content-Type"]) == (405, "application/json")


def test_a_form_posted_without_its_csrf_token_is_a_json_403():
    response = Client(enforce_csrf_checks=True).post("/admin/login/", {"username": "a", "password": "b"})
    assert response.status_code == 403
    assert response.json()["error"] == "csrf_failed"


@pytest.mark.usefixtures("open_twin")
def test_the_last_resort_turns_a_client_fault_into_a_json_400_logged_in_one_line(client, caplog, monkeypatch):
    from twin import views

    def too_deep(**kwargs):
        raise RecursionError("maximum recursion depth exceeded while deserializing an object")

    monkeypatch.setattr(views, "snapshot_build", too_deep)
    with caplog.at_level(logging.WARNING):
        response = client.get("/api/twin/state")
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"
    assert all(record.exc_info is None for record in caplog.records)
    assert any("RecursionError" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize(
    "exc",
    [RecursionError(), UnicodeDecodeError("utf-8", b"\xe9", 0, 1, "x"), DataError("value too long"),
     ValueError("PostgreSQL text fields cannot contain NUL (0x00) bytes")],
)  # fmt: skip
def test_client_faults_are_recognised(exc):
    assert client_fault(exc)


def test_other_errors_are_not_client_faults():
    assert not client_fault(ValueError("a bug"))
    assert not client_fault(KeyError("a bug"))


@pytest.mark.usefixtures("open_twin")
@pytest.mark.parametrize("path", ["/api/docs/", "/api/schema/", "/api/twin/state", "/api/metrics/batch", "/api/health"])
def test_options_is_a_json_405_on_every_api_path(client, path):
    # The docs view rendered DRF's OPTIONS metadata with its HTML template: a 500.
    response = client.options(path)
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"
