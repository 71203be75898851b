"""End to end: admin logins are throttled on the real (ASGI) server too, where django-axes takes its async path."""

from __future__ import annotations

import asyncio
import re
import uuid

import aiohttp
import pytest

from tests.e2e.conftest import server_start, server_stop

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_after_the_failure_limit_the_right_password_is_refused_with_a_json_429(tmp_path, django_user_model, settings):
    django_user_model.objects.create_user("operator", password="the-right-password-1", is_staff=True)
    server = server_start(
        tmp_path,
        CHANNEL_LAYER_PREFIX=f"twin-test-{uuid.uuid4().hex[:8]}",
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
    )

    async def attempt(http: aiohttp.ClientSession, password: str) -> aiohttp.ClientResponse:
        async with http.get(f"{server.url}/admin/login/") as page:
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', await page.text()).group(1)
        form = {"username": "operator", "password": password, "csrfmiddlewaretoken": token, "next": "/admin/"}
        response = await http.post(
            f"{server.url}/admin/login/",
            data=form,
            headers={"Referer": f"{server.url}/admin/login/"},
            allow_redirects=False,
        )
        await response.read()
        return response

    async def scenario() -> list[aiohttp.ClientResponse]:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            return [await attempt(http, p) for p in ["wrong"] * settings.AXES_FAILURE_LIMIT + ["the-right-password-1"]]

    try:
        answers = asyncio.run(scenario())
    finally:
        server_stop(server)
    assert [a.status for a in answers[:-2]] == [200] * (settings.AXES_FAILURE_LIMIT - 1)
    last = answers[-1]
    assert last.status == 429
    assert last.headers["Content-Type"] == "application/json"
    assert int(last.headers["Retry-After"]) > 0
    assert "Traceback" not in server.output()
