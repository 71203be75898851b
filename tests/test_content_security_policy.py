"""Every page the project serves carries the one Content-Security-Policy (common.middleware), whoever answered it.

The crawl walks every URL pattern (Django's resolver, the admin's included), fills
its parameters, and asks as a superuser: whatever each answers (an HTML page, a
redirect, JSON), the policy is the project's, with a fresh nonce.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from common.middleware import CONTENT_SECURITY_POLICY

# A value for each parameter a pattern names (the rest get "1").
PARAMETER_VALUES = {"app_label": "hosts", "hostname": "titan-01", "url": "nothing-here/"}


def _patterns(patterns: list, prefix: str = "") -> Iterator[str]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _patterns(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


def _url(pattern: str) -> str:
    """A concrete path for a route or regex pattern: each parameter filled, anchors dropped."""
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: PARAMETER_VALUES.get(m[1], "1"), pattern)
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: PARAMETER_VALUES.get(m[1], "1"), path)
    return "/" + path.replace("^", "").replace("$", "")


ROUTES = sorted(set(_patterns(get_resolver().url_patterns)))


def _policy_shape(policy: str) -> str:
    return re.sub(r"'nonce-[A-Za-z0-9_-]{16,}'", "'nonce-…'", policy)


EXPECTED = _policy_shape(CONTENT_SECURITY_POLICY.format(nonce="x" * 22))


@pytest.fixture
def superuser_client(db, django_user_model) -> Client:
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("root", password="pw-for-tests-only"))
    return client


@pytest.mark.parametrize("pattern", ROUTES)
def test_every_route_answers_with_the_one_policy(superuser_client: Client, pattern: str):
    response = superuser_client.get(_url(pattern))
    assert response.status_code < 500, (pattern, response.status_code)
    assert _policy_shape(response["Content-Security-Policy"]) == EXPECTED, pattern


@pytest.mark.parametrize("client_kind", ["anonymous", "superuser"])
def test_the_crawl_meets_every_kind_of_html_page(db, django_user_model, client_kind: str):
    """The login pages, the admin, the dashboard and the API docs all answer HTML, with the policy."""
    client = Client()
    if client_kind == "superuser":
        client.force_login(django_user_model.objects.create_superuser("root", password="pw-for-tests-only"))
    html = {}
    for pattern in ROUTES:
        response = client.get(_url(pattern))
        if response.get("Content-Type", "").startswith("text/html"):
            html[pattern] = response["Content-Security-Policy"]
    expected = {"login/", "admin/login/", "api/docs/", "api/redoc/"}
    if client_kind == "superuser":
        expected |= {"", "admin/", "admin/hosts/host/", "admin/commands/command/"}
    assert expected <= set(html), sorted(html)
    assert {_policy_shape(policy) for policy in html.values()} == {EXPECTED}


def test_each_response_gets_its_own_nonce(db):
    client = Client()
    first, second = (client.get("/login/")["Content-Security-Policy"] for _ in range(2))
    assert first != second


def test_error_answers_carry_the_policy_too(db):
    client = Client(enforce_csrf_checks=True)
    for response in (client.get("/nothing/here"), client.delete("/api/twin/state"), client.post("/login/")):
        assert response.status_code >= 400
        assert _policy_shape(response["Content-Security-Policy"]) == EXPECTED
