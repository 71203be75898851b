"""A large floor: far columns drawn as one box each, near hosts as themselves, and nothing an operator uses lost.

Against a live server, in headless chromium; every test fails on a console
error, a script error or a failed request. How fast it orbits is measured in
bench/dashboard.py (figure 4), not here.
"""

from __future__ import annotations

import pytest

from tests.dashboard.conftest import page_open, screenshot
from tests.dashboard.test_browser import LIVE, fleet_post

pytestmark = pytest.mark.e2e

FIRST_FRAME = "() => twinDashboard.floor.stats.firstFrameAt !== null"
LARGE = 2100  # above the floor's LOD_MIN_HOSTS (2000)

# A host's colour as its column's band holds it (sRGB bytes) and as its instance holds it (linear, converted back).
BAND_AND_INSTANCE = """(name) => {
    const f = twinDashboard.floor, i = twinDashboard.live.index.get(name), c = f.columns;
    const o = (c.bandOf[i] + 4) * 4;
    const lin = Array.from(f.agentMesh.instanceColor.array.slice(f.slotOf[i] * 3, f.slotOf[i] * 3 + 3));
    const srgb = (x) => Math.round(255 * (x <= 0.0031308 ? 12.92 * x : 1.055 * Math.pow(x, 1 / 2.4) - 0.055));
    return {band: Array.from(c.data.slice(o, o + 3)), instance: lin.map(srgb)};
}"""


def test_a_large_floor_draws_far_columns_and_near_hosts_and_a_click_still_picks_a_host(browser, start_dashboard):
    server = start_dashboard()
    fleet_post(server, hosts=LARGE)
    page, watch = page_open(browser, server)
    page.wait_for_selector(LIVE, timeout=30000)
    page.wait_for_function(FIRST_FRAME, timeout=30000)
    floor = page.evaluate(
        """() => { const f = twinDashboard.floor;
            return {columns: f.columns.columns.length, hostsDrawn: f.agentMesh.visible, hosts: f.agentMesh.count,
                    near: f.nearMesh.count, shownLinks: f.source.links.filter((l) => f.linkShown(l)).length,
                    linkInstances: f.linkMesh.count}; }"""
    )
    assert floor["hosts"] == LARGE and floor["hostsDrawn"] is False
    assert 0 < floor["columns"] < LARGE  # hosts stack in columns: fewer boxes than hosts
    assert floor["near"] <= 1500
    # Only the links shown are drawn: the busiest fifty of 2,100, not 2,100 hidden ones.
    assert floor["linkInstances"] == floor["shownLinks"] >= 50
    screenshot(page, "floor-2100-hosts-far")
    # Every link shown: a column's links to the core switch are one beam, as wide as its busiest.
    page.select_option("#link-mode", "all")
    merged = page.evaluate(
        """() => { const f = twinDashboard.floor;
            return {merged: f.linksMerged, beams: f.linkMesh.count, columns: f.columns.columns.length}; }"""
    )
    assert merged["merged"] is True and 0 < merged["beams"] <= merged["columns"]
    page.select_option("#link-mode", "top")

    # Up close, the host and its column are drawn as boxes, and a click there picks a host of that column.
    page.evaluate("() => twinDashboard.select('node-01000')")
    page.wait_for_function("() => twinDashboard.floor.flight === null && twinDashboard.floor.nearMesh.count > 0")
    page.wait_for_timeout(200)
    near = page.evaluate(
        """() => { const f = twinDashboard.floor, i = twinDashboard.live.index.get('node-01000');
            const p = f.screenPosition(i), r = f.renderer.domElement.getBoundingClientRect();
            const picked = f.pick({clientX: r.left + p.x, clientY: r.top + p.y});
            return {slot: f.nearSlot[i], column: f.columns.columnOf[i], folded: f.columns.near[f.columns.columnOf[i]],
                    picked: picked === null ? null : f.columns.columnOf[picked]}; }"""
    )
    assert near["slot"] >= 0 and near["folded"] == 1
    assert near["picked"] == near["column"]
    screenshot(page, "floor-2100-hosts-near")

    # A colour change reaches the far columns' bands as well as the hosts' instances.
    far_host = "node-02090"
    before = page.evaluate(BAND_AND_INSTANCE, far_host)
    page.locator("label:has(input[value=cpu])").click()
    after = page.evaluate(BAND_AND_INSTANCE, far_host)
    assert after["band"] != before["band"]
    for shown in (before, after):
        assert all(abs(a - b) <= 2 for a, b in zip(shown["band"], shown["instance"], strict=True))
    assert watch.problems() == []
