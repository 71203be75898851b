"""The side panel's history (charts and status changes) and the time slider, against a live server with real history.

An hour of samples is stored through the real ingest service as received in
the past (``ingest_at``), and the real status recorder runs at the times it
would have run, so the server's history API, status events and
``/api/twin/state?at=`` answer from real rows; nothing is answered by the test.
"""

from __future__ import annotations

import json
import urllib.request
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from tests.conftest import ingest_at, sample_dict
from tests.dashboard.conftest import page_open, screenshot
from twin.services import status_transitions_record

pytestmark = pytest.mark.e2e

# Thresholds the test process (the recorder run here) and the server agree on:
# a sample a minute keeps a host online; ten minutes of silence make it offline.
THRESHOLDS = {"TWIN_STALE_AFTER_SECONDS": 300, "TWIN_OFFLINE_AFTER_SECONDS": 600}
MINUTES = 60
SILENT_FROM = 45
TITAN_02 = {"x": 3, "y": 0.4, "z": 0}  # titan-02 falls silent 45 minutes ago, and reports again now


def cpu(minute: int) -> float:
    """titan-01's CPU load ``minute`` minutes ago: a ramp, so each point is recognisable."""
    return float(MINUTES - minute)


@pytest.fixture
def an_hour_of_history(transactional_db, settings):
    """titan-01 reports every minute for an hour; titan-02 too until 45 minutes ago, then once now.

    The status recorder runs a second after each minute's samples, as the
    server's job would have: titan-02 went stale, then offline, by the clock,
    and came back online when its sample arrived now.
    """
    for name, value in THRESHOLDS.items():
        setattr(settings, name, value)
    now = timezone.now()
    for minute in range(MINUTES, 0, -1):
        at = now - timedelta(minutes=minute)
        samples = [sample_dict("titan-01", at=at, cpu_load=cpu(minute), net_bytes_tx=1_000_000 * (MINUTES - minute))]
        if minute >= SILENT_FROM:
            samples.append(sample_dict("titan-02", at=at, position=TITAN_02))
        ingest_at(samples, received_at=at + timedelta(milliseconds=150))
        status_transitions_record(now=at + timedelta(seconds=1))
    now = timezone.now()
    ingest_at(
        [sample_dict("titan-01", at=now, cpu_load=cpu(0)), sample_dict("titan-02", at=now, position=TITAN_02)],
        received_at=now,
    )
    status_transitions_record(now=now + timedelta(milliseconds=1))
    return now


def server_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def test_the_side_panel_charts_and_status_changes_come_from_the_history_api(
    an_hour_of_history, browser, start_dashboard
):
    server = start_dashboard(**{k: str(v) for k, v in THRESHOLDS.items()})
    page, watch = page_open(browser, server, "/#host=titan-01")
    page.wait_for_selector("#connection[data-state=live]")
    page.wait_for_function("() => document.querySelector('[data-history-note]').textContent.includes('history API')")
    # The CPU chart holds the hour the server keeps, point for point.
    # (The page's hour ends a few seconds after the fixture's: the oldest sample may fall outside it.)
    charted = page.evaluate("twinDashboard.charts.usage.data[1].filter(v => v !== null)")
    assert len(charted) >= MINUTES - 2
    assert charted == [cpu(m) for m in range(MINUTES, -1, -1)][-len(charted) :]
    network = page.evaluate("twinDashboard.charts.net.data[1].filter(v => v !== null)")
    assert network and all(v >= 0 for v in network)  # rates from the counters: never negative

    # titan-02's status changes, recorded by the real recorder, newest first.
    page.evaluate("twinDashboard.select('titan-02')")
    page.wait_for_selector("#status-events:not([hidden]) li[data-to]")
    listed = page.locator("#status-events li[data-to]")
    changes = [(item.get_attribute("data-to"), item.get_attribute("data-cause")) for item in listed.all()]
    assert changes == [("online", "data"), ("offline", "silence"), ("stale", "silence"), ("online", "inventory")]
    assert "Offline → Online" in listed.first.text_content()
    assert "a sample arrived" in listed.first.text_content()
    screenshot(page, "history-panel")
    assert watch.problems() == []


def test_the_time_slider_shows_the_twin_the_server_had_at_that_time_and_goes_back_to_live(
    an_hour_of_history, browser, start_dashboard
):
    server = start_dashboard(**{k: str(v) for k, v in THRESHOLDS.items()})
    page, watch = page_open(browser, server, "/#host=titan-02")
    page.wait_for_selector("#connection[data-state=live]")
    page.wait_for_selector("#timeline:not([hidden])")
    page.wait_for_function("() => document.querySelector('[data-status-chip=online] [data-count]').textContent === '3'")
    assert page.locator("[data-status-chip=offline] [data-count]").text_content() == "0"

    # Thirty steps of a minute from the keyboard: the slider asks once, where it rests.
    page.locator("#timeline-range").focus()
    with page.expect_response(lambda r: "/api/twin/state?at=" in r.url) as answered:
        for _ in range(30):
            page.keyboard.press("ArrowLeft")
    assert page.locator("#timeline-label").text_content().endswith("30 min ago")
    page.wait_for_selector("#connection[data-state=history]")
    # Thirty minutes ago titan-02 had been silent for a quarter of an hour: offline.
    past = answered.value.json()
    statuses = {h["hostname"]: h["status"] for h in past["hosts"]}
    assert (statuses["titan-01"], statuses["titan-02"]) == ("online", "offline")
    for status in ("online", "offline"):
        shown = page.locator(f"[data-status-chip={status}] [data-count]").text_content()
        assert shown == str(list(statuses.values()).count(status))
    assert page.locator("[data-status-chip=offline] [data-count]").text_content() == "1"
    assert page.locator("[data-f=status]").get_attribute("data-status") == "offline"
    # Its status changes as they stood then: none of the later return.
    page.wait_for_function(
        "() => [...document.querySelectorAll('#status-events li[data-to]')].map(e => e.dataset.to).join() === "
        "'offline,stale,online'"
    )
    # The page shows what the server answers for that time, asked again outside the browser.
    at = urlsplit(answered.value.url).query
    assert server_json(f"{server.url}/api/twin/state?{at}") == past
    screenshot(page, "time-slider-history")

    page.click("#timeline-live")
    page.wait_for_selector("#connection[data-state=live]")
    assert page.locator("[data-status-chip=offline] [data-count]").text_content() == "0"
    assert page.locator("[data-f=status]").get_attribute("data-status") == "online"
    page.wait_for_selector("#status-events li[data-to=online][data-cause=data]")
    assert watch.problems() == []


# Each chart's y-axis labels, the width uPlot gave the axis and the widest label as drawn.
Y_AXES = """() => Object.fromEntries(['usage', 'load', 'net'].map((name) => {
    const u = twinDashboard.charts[name], axis = u.axes[1];
    u.ctx.font = axis.font[0];
    const widest = Math.max(...axis._values.map((v) => u.ctx.measureText(v).width / (window.devicePixelRatio || 1)));
    return [name, {values: axis._values, size: axis._size, widest}];
}))"""


def test_the_charts_y_axes_show_values_in_full_and_the_load_chart_has_several_ticks(
    an_hour_of_history, browser, start_dashboard
):
    server = start_dashboard(**{k: str(v) for k, v in THRESHOLDS.items()})
    page, watch = page_open(browser, server, "/#host=titan-01")
    page.wait_for_selector("#connection[data-state=live]")
    page.wait_for_function("() => document.querySelector('[data-history-note]').textContent.includes('history API')")
    axes = page.evaluate(Y_AXES)
    for name, axis in axes.items():
        # Every label is a number with its unit, and fits the axis (none clipped at the left).
        assert axis["values"] and all(any(c.isdigit() for c in v) for v in axis["values"]), (name, axis)
        assert axis["widest"] <= axis["size"], (name, axis)
    assert any(v.endswith("b/s") for v in axes["net"]["values"])
    assert len(axes["load"]["values"]) >= 3
    page.locator("#history").screenshot(
        path=str(screenshot(page, "history-charts").with_name("history-charts-panel.png"))
    )
    assert watch.problems() == []


def test_a_host_selected_before_it_existed_stays_selected_as_absent_and_back_to_live_shows_it(
    an_hour_of_history, browser, start_dashboard
):
    server = start_dashboard(**{k: str(v) for k, v in THRESHOLDS.items()})
    page, watch = page_open(browser, server, "/#host=titan-01")
    page.wait_for_selector("#connection[data-state=live]")
    page.wait_for_function("() => document.querySelector('[data-f=hostname]').textContent === 'titan-01'")
    page.locator("#timeline-range").focus()
    # Two hours back (Page Down: an hour), before titan-01's first sample.
    with page.expect_response(lambda r: "/api/twin/state?at=" in r.url):
        page.keyboard.press("PageDown")
        page.keyboard.press("PageDown")
    page.wait_for_selector("#connection[data-state=history]")
    page.wait_for_selector("[data-panel-absent][data-hostname=titan-01]:not([hidden])")
    assert "was not in the twin at" in page.locator("[data-panel-absent]").text_content()
    assert page.evaluate("twinDashboard.state.selected") == "titan-01"
    assert page.evaluate("location.hash") == "#host=titan-01"
    screenshot(page, "time-slider-host-absent")

    # Fine steps: Shift+arrow is ten seconds, an arrow a minute.
    page.keyboard.press("End")
    page.keyboard.press("Shift+ArrowLeft")
    assert page.locator("#timeline-label").text_content().endswith("10 s ago")
    page.keyboard.press("ArrowLeft")
    assert page.locator("#timeline-label").text_content().endswith("1 min 10 s ago")

    page.click("#timeline-live")
    page.wait_for_selector("#connection[data-state=live]")
    page.wait_for_function("() => document.querySelector('[data-f=hostname]').textContent === 'titan-01'")
    assert page.locator("[data-panel-host]").is_visible()
    assert page.evaluate("twinDashboard.floor.selected") == page.evaluate("twinDashboard.live.index.get('titan-01')")
    assert watch.problems() == []
