"""twinsite.handler: sync views in one hop on a pooled request thread; async views and static files on the loop."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.testing import ApplicationCommunicator

from twinsite.handler import OneHopASGIHandler, _path_wants_loop


def test_sync_views_go_to_a_thread_and_async_views_and_static_files_stay_on_the_loop():
    assert _path_wants_loop("/api/health") is False
    assert _path_wants_loop("/api/metrics/batch") is False
    assert _path_wants_loop("/no/such/path") is False
    assert _path_wants_loop("/healthz") is True
    assert _path_wants_loop("/static/admin/css/base.css") is True


async def _get(handler: OneHopASGIHandler, path: str) -> tuple[int, bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    communicator = ApplicationCommunicator(handler, scope)
    await communicator.send_input({"type": "http.request", "body": b""})
    start = await communicator.receive_output(5)
    body = await communicator.receive_output(5)
    await communicator.wait(5)
    return start["status"], body["body"]


@pytest.mark.django_db
def test_requests_reuse_one_request_thread_and_answer_as_before(settings):
    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    handler = OneHopASGIHandler()

    async def requests() -> list[tuple[int, bytes]]:
        return [await _get(handler, "/api/health"), await _get(handler, "/api/health"), await _get(handler, "/nope")]

    (s1, b1), (s2, b2), (s3, b3) = asyncio.run(requests())
    assert (s1, s2) == (200, 200) and b1 == b2 and b'"ok"' in b1
    # An unknown path still gets the JSON error of the whole middleware chain.
    assert s3 == 404 and b3.startswith(b'{"error"')
    # One after the other, the three requests were served by the same pooled thread.
    assert len(handler._idle_threads) == 1
