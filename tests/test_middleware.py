"""twinsite.middleware: static files served on the event loop, no thread hops per request."""

from __future__ import annotations

import asyncio

import pytest
from django.conf import settings
from django.test import AsyncClient
from django.utils.module_loading import import_string


def test_every_middleware_can_run_on_the_event_loop():
    # One sync-only middleware makes Django hop between the loop and a thread
    # twice more on every request (bench/analysis.md).
    sync_only = [path for path in settings.MIDDLEWARE if not getattr(import_string(path), "async_capable", False)]
    assert sync_only == []


@pytest.mark.django_db
def test_the_admins_static_files_are_served_by_the_asgi_app():
    async def fetch() -> tuple[int, bytes, str]:
        response = await AsyncClient().get("/static/admin/css/base.css")
        body = b"".join(response.streaming_content)
        return response.status_code, body, response["Content-Type"]

    status, body, content_type = asyncio.run(fetch())
    assert status == 200
    assert content_type.startswith("text/css")
    assert b"{" in body


@pytest.mark.django_db
def test_other_paths_pass_through_to_the_views():
    response = asyncio.run(AsyncClient().get("/api/health"))
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
