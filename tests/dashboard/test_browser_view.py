"""What the floor shows when it opens: the whole floor framed, links shown, rack labels legible.

Against a live server, in headless chromium; every test fails on a console
error, a script error or a failed request. Screenshots go to var/screenshots/.
"""

from __future__ import annotations

import pytest

from tests.conftest import sample_dict
from tests.dashboard.conftest import page_open, screenshot
from tests.dashboard.test_browser import LIVE, fleet_post

pytestmark = pytest.mark.e2e

FIRST_FRAME = "() => twinDashboard.floor.stats.firstFrameAt !== null"

# Each rack's box and each label on screen, with the canvas and the overlays drawn over it.
RACKS_ON_SCREEN = """() => {
    const f = twinDashboard.floor;
    const rect = (e) => {
        const r = e.getBoundingClientRect();
        return {left: r.left, top: r.top, right: r.right, bottom: r.bottom};
    };
    return {
        canvas: rect(f.renderer.domElement),
        legend: rect(document.querySelector('#legend')),
        timeline: rect(document.querySelector('#timeline')),
        racks: f.layout.racks.map((r) => ({name: r.name, box: f.screenRect(r.min, r.max)})),
        labels: f.labels.map((s) => {
            const p = s.position, half = s.scale.y / 2;
            const box = f.screenRect([p.x, p.y - half, p.z], [p.x, p.y + half, p.z]);
            return {name: s.userData.rack.name, height: box.bottom - box.top};
        }),
    };
}"""


def overlaps(a: dict, b: dict) -> bool:
    return a["left"] < b["right"] and b["left"] < a["right"] and a["top"] < b["bottom"] and b["top"] < a["bottom"]


def inside(a: dict, b: dict) -> bool:
    return a["left"] >= b["left"] and a["right"] <= b["right"] and a["top"] >= b["top"] and a["bottom"] <= b["bottom"]


def test_the_floor_opens_framed_with_every_rack_on_screen_and_clear_of_the_legend_and_the_slider(
    browser, start_dashboard
):
    server = start_dashboard()
    fleet_post(server)
    page, watch = page_open(browser, server)
    page.wait_for_selector(LIVE, timeout=15000)
    page.wait_for_function(FIRST_FRAME)
    seen = page.evaluate(RACKS_ON_SCREEN)
    assert len(seen["racks"]) == 15
    for rack in seen["racks"]:
        assert rack["box"] is not None, rack["name"]
        assert inside(rack["box"], seen["canvas"]), rack
        assert not overlaps(rack["box"], seen["legend"]), rack
        assert not overlaps(rack["box"], seen["timeline"]), rack
    # The floor fills the view rather than sitting small in its middle.
    lefts, rights = [r["box"]["left"] for r in seen["racks"]], [r["box"]["right"] for r in seen["racks"]]
    tops, bottoms = [r["box"]["top"] for r in seen["racks"]], [r["box"]["bottom"] for r in seen["racks"]]
    canvas = seen["canvas"]
    spread = max(
        (max(rights) - min(lefts)) / (canvas["right"] - canvas["left"]),
        (max(bottoms) - min(tops)) / (canvas["bottom"] - canvas["top"]),
    )
    assert spread > 0.5
    # Every rack's label is readable at this overview: at least 12 px high on screen.
    assert len(seen["labels"]) == 15
    assert min(label["height"] for label in seen["labels"]) >= 12
    screenshot(page, "floor-framed-300-hosts")
    assert watch.problems() == []


def test_on_a_floor_of_hundreds_of_links_the_busiest_fifty_are_shown_by_default(browser, start_dashboard):
    server = start_dashboard()
    fleet_post(server)
    page, watch = page_open(browser, server)
    page.wait_for_selector(LIVE, timeout=15000)
    page.wait_for_function(FIRST_FRAME)
    assert page.locator("#link-mode").input_value() == "top"
    shown = page.evaluate(
        "(() => { const f = twinDashboard.floor; return f.source.links.filter((l) => f.linkShown(l)); })()"
    )
    utilizations = sorted((link["utilization"] for link in page.evaluate("twinDashboard.live.links")), reverse=True)
    assert len(shown) >= 50
    # The fifty busiest, whatever their level: the demo's busiest is far below 50 %.
    assert min(link["utilization"] for link in shown) == utilizations[49]
    page.select_option("#link-mode", "busy")
    busy = page.evaluate(
        "(() => { const f = twinDashboard.floor; return f.source.links.filter((l) => f.linkShown(l)).length; })()"
    )
    assert busy == sum(1 for u in utilizations if u >= 0.5)
    assert watch.problems() == []


def test_a_single_host_is_shown_among_the_floor_not_filling_the_screen(browser, start_dashboard):
    server = start_dashboard()
    from dashboard.demo import samples_post

    samples_post(server.url, [sample_dict("lonely-01")])
    page, watch = page_open(browser, server)
    page.wait_for_selector(LIVE, timeout=15000)
    page.wait_for_function(FIRST_FRAME)
    box = page.evaluate(
        """() => {
            const f = twinDashboard.floor, i = twinDashboard.live.index.get('lonely-01');
            const p = f.layout.positions, w = f.layout.width / 2, h = f.layout.height / 2;
            const r = f.renderer.domElement.getBoundingClientRect();
            const b = f.screenRect([p[i*3] - w, p[i*3+1] - h, p[i*3+2] - w], [p[i*3] + w, p[i*3+1] + h, p[i*3+2] + w]);
            return {width: (b.right - b.left) / r.width, height: (b.bottom - b.top) / r.height};
        }"""
    )
    assert 0.01 < box["width"] < 0.25 and box["height"] < 0.25
    screenshot(page, "floor-one-host")
    assert watch.problems() == []
