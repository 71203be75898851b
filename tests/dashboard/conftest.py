"""Browser tests: Debian's chromium driven by Playwright for Python, against a live daphne server."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import LiveServer, server_start, server_stop

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Headless chromium here renders WebGL in software (SwiftShader); nothing reaches the network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--no-first-run",
    "--metrics-recording-only",
    "--disable-dev-shm-usage",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
]


@pytest.fixture
def browser(start_dashboard) -> Iterator[Any]:
    """A headless chromium for one test (Debian's package; Playwright's own download is never used).

    Started after the test database is set up and closed before it is flushed:
    Playwright's sync API keeps an event loop running in this thread, and while
    it runs Django takes the thread for an async context, where it refuses ORM
    calls and hands out other connection objects (pytest-django's flush would
    then miss the serialized-rollback mark and re-create content types, which
    the next test's restore collides with). Test data is made before the
    browser starts; ORM calls while it runs are allowed for that reason alone.
    """
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium); CI installs it")
    from playwright.sync_api import sync_playwright

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield launched
            launched.close()


@pytest.fixture
def start_dashboard(transactional_db, django_db_serialized_rollback, tmp_path) -> Iterator[Callable]:
    """Start a twin (its Socket.IO accepts the page's own origin on any port); stopped after the test."""
    started: list[LiveServer] = []
    # A Redis key prefix of this test's own, so runs sharing a Redis never hear each other.
    channel_prefix = f"twin-test-{uuid.uuid4().hex[:8]}"

    from hosts.services import core_switch_ensure

    # The core switch comes with a migration; a flush by an earlier test may have taken it.
    core_switch_ensure()

    def start(**env: str) -> LiveServer:
        server = server_start(
            tmp_path,
            CHANNEL_LAYER_PREFIX=channel_prefix,
            # Plain HTTP on loopback: cookies without the Secure flag, as on a developer's machine.
            SESSION_COOKIE_SECURE="false",
            CSRF_COOKIE_SECURE="false",
            **env,
        )
        started.append(server)
        return server

    yield start
    for server in started:
        server_stop(server)


@dataclass
class PageWatch:
    """What a page did that a healthy dashboard never does."""

    origin: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    outside_requests: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    websockets: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        return [*self.console_errors, *self.page_errors, *self.failed_requests, *self.outside_requests]


def page_open(browser: Any, server: LiveServer, path: str = "/", *, context: Any = None) -> tuple:
    """A new page at ``path`` (in ``context``, or a new one) with every error, failed and outside request recorded."""
    context = context or browser.new_context(viewport={"width": 1600, "height": 900})
    page = context.new_page()
    watch = PageWatch(origin=server.url)

    own = (server.url + "/", server.url.replace("http", "ws", 1) + "/", "data:", "blob:")

    def on_request(request: Any) -> None:
        watch.requests.append(request.url)
        if not request.url.startswith(own):
            watch.outside_requests.append(request.url)

    def on_websocket(socket: Any) -> None:
        watch.websockets.append(socket.url)
        if not socket.url.startswith(own):
            watch.outside_requests.append(socket.url)

    def on_response(response: Any) -> None:
        if response.status >= 400:
            watch.failed_requests.append(f"{response.status} {response.url}")

    page.on("console", lambda m: m.type == "error" and watch.console_errors.append(m.text))
    page.on("pageerror", lambda e: watch.page_errors.append(str(e)))
    page.on("requestfailed", lambda r: watch.failed_requests.append(f"{r.url}: {r.failure}"))
    page.on("request", on_request)
    page.on("response", on_response)
    page.on("websocket", on_websocket)
    page.goto(server.url + path)
    return page, watch


def screenshot(page: Any, name: str) -> Path:
    """Save a screenshot under var/screenshots/ (a test artefact)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path
