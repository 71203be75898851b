"""Admin logins are throttled by django-axes, per username and address, and every failure is logged."""

from __future__ import annotations

import logging

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Dozens of login attempts: the production hasher costs a third of a second each.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def operator(django_user_model):
    return django_user_model.objects.create_user("operator", password="the-right-password-1", is_staff=True)


def attempt(client: Client, password: str, username: str = "operator", address: str = "10.0.0.1"):
    return client.post(LOGIN, {"username": username, "password": password, "next": "/admin/"}, REMOTE_ADDR=address)


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_after_the_failure_limit_even_the_right_password_is_refused_with_a_429(operator, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert attempt(client, "wrong").status_code == 200  # the form again
    locked = attempt(client, "wrong")
    assert locked.status_code == 429
    response = attempt(client, "the-right-password-1")
    assert response.status_code == 429
    assert response.json()["error"] == "login_locked"
    assert int(response["Retry-After"]) == int(settings.AXES_COOLOFF_TIME.total_seconds())
    assert not logged_in(client)


def test_twenty_wrong_passwords_at_full_speed_then_the_right_one_does_not_log_in(operator):
    client = Client()
    codes = [attempt(client, f"guess-{n}").status_code for n in range(20)]
    assert 429 in codes
    assert attempt(client, "the-right-password-1").status_code == 429
    assert not logged_in(client)


def test_the_lockout_is_for_that_username_from_that_address_only(operator, django_user_model, settings):
    django_user_model.objects.create_user("other", password="the-other-password-1", is_staff=True)
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        attempt(client, "wrong")
    elsewhere = Client()
    assert attempt(elsewhere, "the-right-password-1", address="10.0.0.2").status_code == 302
    assert logged_in(elsewhere)
    other_user = Client()
    assert attempt(other_user, "the-other-password-1", username="other").status_code == 302


def test_a_success_before_the_limit_resets_the_count(operator, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        attempt(client, "wrong")
    assert attempt(client, "the-right-password-1").status_code == 302
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert attempt(client, "wrong").status_code == 200


def test_each_failure_and_the_lockout_are_logged(operator, caplog, settings):
    with caplog.at_level(logging.WARNING, logger="axes"):
        for _ in range(settings.AXES_FAILURE_LIMIT):
            attempt(Client(), "wrong")
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("axes")]
    assert sum("AXES: New login failure" in m or "AXES: Repeated login failure" in m for m in messages) >= 1
    assert any("Locking out" in m for m in messages)
    assert all("wrong" not in m for m in messages)  # no password in the log


def test_the_test_suites_admin_client_is_not_throttled(admin_client):
    assert admin_client.get("/admin/").status_code == 200
