"""The API docs (Swagger UI, Redoc) come from the twin itself: they work without internet."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.test import AsyncClient

from tests.e2e.conftest import LiveServer

PAGES = ["/api/docs/", "/api/redoc/"]


class References(HTMLParser):
    """Every URL a page refers to in an attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in {"src", "href", "spec-url"} and value]


def page_get(path: str) -> tuple[int, str, dict[str, str]]:
    response = asyncio.run(AsyncClient().get(path))
    return response.status_code, response.content.decode(), dict(response.headers)


def asset_get(path: str) -> tuple[int, bytes]:
    async def fetch() -> tuple[int, bytes]:
        response = await AsyncClient().get(path)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        return response.status_code, body

    return asyncio.run(fetch())


@pytest.mark.django_db
@pytest.mark.parametrize("path", PAGES)
def test_a_docs_page_names_no_outside_url_and_its_assets_are_served_here(path):
    status, html, headers = page_get(path)
    assert status == 200
    for scheme in ("http://", "https://", 'src="//', 'href="//'):
        assert scheme not in html, f"{path} refers to {scheme}…"
    parser = References()
    parser.feed(html)
    assets = [url for url in parser.urls if url.startswith("/static/")]
    assert assets, f"{path} loads nothing from /static/"
    for url in assets:
        asset_status, body = asset_get(url)
        assert (asset_status, len(body) > 100) == (200, True), url
    # And the browser may not load anything from elsewhere, whatever the scripts ask for.
    policy = headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "img-src 'self' data:" in policy


def test_the_pinned_sidecar_provides_swagger_ui_and_redoc():
    import drf_spectacular_sidecar

    root = Path(drf_spectacular_sidecar.__file__).parent / "static" / "drf_spectacular_sidecar"
    assert (root / "swagger-ui-dist" / "swagger-ui-bundle.js").stat().st_size > 100_000
    assert (root / "redoc" / "bundles" / "redoc.standalone.js").stat().st_size > 100_000


def page_requests_in_chromium(url: str, netlog: Path) -> tuple[str, set[str]]:
    """Open ``url`` in headless Chromium with every outside name unresolvable; the DOM it built
    and the URLs the page asked for (Chromium's own background requests left out)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    result = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            f"--log-net-log={netlog}",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--virtual-time-budget=10000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    log = json.loads(netlog.read_text())
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    origin = url.split("/api/")[0]
    asked = {
        event["params"]["url"]
        for event in log["events"]
        if event["type"] == start_job and event.get("params", {}).get("initiator") == origin
    }
    return result.stdout, asked


@pytest.mark.e2e
@pytest.mark.parametrize("path", PAGES)
def test_in_a_browser_without_internet_the_docs_render_from_the_twin_alone(live_twin: LiveServer, path, tmp_path):
    dom, asked = page_requests_in_chromium(f"{live_twin.url}{path}", tmp_path / "netlog.json")
    assert asked, "the page asked for nothing: it did not load"
    outside = {url for url in asked if not url.startswith(f"{live_twin.url}/")}
    assert not outside, f"the page asked outside the twin for {sorted(outside)}"
    assert f"{live_twin.url}/api/schema/" in asked
    # The schema was read and rendered: the twin's operations are on the page.
    assert "/api/twin/state" in dom and "/api/metrics/batch" in dom
