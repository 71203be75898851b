"""The dashboard in a real browser (headless chromium) against a live server.

Every test fails on a console error, a script error, a failed request or a
request leaving the server's origin. Screenshots of each state are saved
under var/screenshots/.
"""

from __future__ import annotations

import re

import pytest

from dashboard.demo import fleet_samples, samples_post
from dashboard.selectors import page_features
from tests.conftest import sample_dict
from tests.dashboard.conftest import page_open, screenshot
from tests.e2e.conftest import server_stop
from tests.ops.test_checks import get_json

pytestmark = pytest.mark.e2e

LIVE = "#connection[data-state=live]"
FLEET = 300


def fleet_post(server, hosts: int = FLEET) -> None:
    assert samples_post(server.url, fleet_samples(hosts=hosts)) == 2 * hosts


def live_page(browser, server, path: str = "/"):
    page, watch = page_open(browser, server, path)
    page.wait_for_selector(LIVE, timeout=15000)
    return page, watch


def host_color(page, hostname: str) -> list[float]:
    return page.evaluate(
        """(name) => {
            const f = twinDashboard.floor, i = twinDashboard.live.index.get(name);
            const slot = f.slotOf[i], colors = f.meshes[f.meshOf[i]].instanceColor.array;
            return Array.from(colors.slice(slot * 3, slot * 3 + 3));
        }""",
        hostname,
    )


def cpu_column(page) -> list[float]:
    """The CPU column of the table's page; a host without a value (the core switch) counts as -1, as it sorts."""
    cells = page.locator("#table-view tbody tr td:nth-child(4)").all_text_contents()
    return [-1.0 if text == "\u2013" else float(text.split()[0]) for text in cells]


def test_the_page_loads_the_live_floor_with_no_error_and_nothing_from_another_host(browser, start_dashboard):
    server = start_dashboard()
    fleet_post(server)
    page, watch = live_page(browser, server)

    page.wait_for_function(f"() => document.querySelector('#summary-total').textContent === '{FLEET + 1} hosts'")
    assert page.evaluate("twinDashboard.floor.agentMesh.count") == FLEET
    assert page.evaluate("twinDashboard.floor.virtualMesh.count") == 1  # the core switch, drawn as a diamond
    assert page.evaluate("twinDashboard.floor.columns") is None  # a floor this small draws every host as itself
    assert page.locator("[data-status-chip=online] [data-count]").text_content() == str(FLEET + 1)
    assert page.locator("#busiest .link-chip").count() == 3
    assert page.locator("#legend li").count() >= 5
    page.wait_for_function("() => twinDashboard.floor.stats.firstFrameAt !== null")
    screenshot(page, "floor-300-hosts-status")

    page.locator("label:has(input[value=cpu])").click()
    assert "CPU 0 %" in page.locator("#legend").text_content()
    screenshot(page, "floor-300-hosts-cpu")
    assert watch.problems() == []
    assert any(url.startswith(server.url.replace("http", "ws", 1) + "/socket.io/") for url in watch.websockets)


def test_a_posted_batch_changes_the_hosts_colour_and_metric_text_within_the_push_interval(browser, start_dashboard):
    server = start_dashboard()
    fleet_post(server)
    page, watch = live_page(browser, server, "/#host=node-00005")
    page.wait_for_function("() => document.querySelector('[data-f=title]').textContent === 'node-00005'")
    page.locator("label:has(input[value=cpu])").click()
    before = host_color(page, "node-00005")

    place = fleet_samples(hosts=FLEET)[10]  # node-00005's latest sample: same rack and position
    samples_post(server.url, [{**place, **sample_dict("node-00005", cpu_load=97.5), "rack": place["rack"]}])
    # Pushes are at most TWIN_PUSH_MAX_PER_SECOND (2) a second, so the change shows in one
    # push gap plus a rebuild and the trip. How fast is measured in bench/ (figure 7), not
    # here: on a loaded CI machine only the bound of the wait is asserted.
    page.wait_for_function("() => document.querySelector('[data-f=cpu]').textContent.includes('97.5 %')", timeout=10000)
    after = host_color(page, "node-00005")
    assert after != before
    assert after[0] > 0.5 and after[1] > 0.5  # viridis near 100 % is yellow
    assert page.evaluate("twinDashboard.stats.deltasApplied") >= 1
    screenshot(page, "host-selected-after-batch")
    assert watch.problems() == []


def test_a_host_goes_stale_by_the_clock_alone_and_the_page_shows_it(browser, start_dashboard):
    server = start_dashboard(TWIN_STALE_AFTER_SECONDS="3", TWIN_OFFLINE_AFTER_SECONDS="300")
    samples_post(server.url, [sample_dict("titan-01"), sample_dict("titan-02")])
    page, watch = live_page(browser, server, "/#host=titan-01")
    # A fresh sample, then silence: online first, stale by the clock alone.
    samples_post(server.url, [sample_dict("titan-01", position={"x": 1.2, "y": 0.4, "z": -0.8})])
    page.wait_for_selector("[data-f=status][data-status=online]", timeout=5000)
    screenshot(page, "host-online")
    page.wait_for_selector("[data-f=status][data-status=stale]", timeout=15000)
    # Both hosts, and the core switch they hang off (as alive as its liveliest neighbour).
    page.wait_for_function("() => document.querySelector('[data-status-chip=stale] [data-count]').textContent === '3'")
    assert "last seen" in page.locator("[data-f=seen]").text_content()
    stale_rgb = host_color(page, "titan-01")
    assert stale_rgb[0] > stale_rgb[2]  # Okabe-Ito orange
    # The server's recorder saw it too: its host-status event lands in the panel's status changes.
    page.wait_for_selector("#status-events li[data-to=stale][data-cause=silence]", timeout=10000)
    assert page.evaluate("twinDashboard.hostStatus.received") >= 1
    # The summary bar names the latest change of any host (the core switch follows its hosts).
    assert page.locator("#status-feed").get_attribute("data-hostname") in {"titan-01", "titan-02", "core-switch"}
    screenshot(page, "host-stale")
    assert watch.problems() == []


def test_a_fleet_going_stale_at_once_arrives_as_one_summary_and_the_panel_reads_its_host_again(
    browser, start_dashboard
):
    # 300 hosts whose samples stop at once: the server's recorder finds them stale in one run.
    server = start_dashboard(TWIN_STALE_AFTER_SECONDS="6", TWIN_OFFLINE_AFTER_SECONDS="300")
    fleet_post(server)
    page, watch = live_page(browser, server, "/#host=node-00005")
    page.wait_for_function("() => document.querySelector('[data-f=title]').textContent === 'node-00005'")
    page.wait_for_selector("[data-f=status][data-status=online]")
    page.wait_for_function("() => (twinDashboard.stats.hostStatusBursts || 0) >= 1", timeout=20000)
    page.wait_for_function(
        "() => /\\d[\\d,]* hosts changed status/.test(document.querySelector('#status-feed').textContent)"
    )
    # The summary names no host; the selected host's own change is read from the history API.
    page.wait_for_selector("#status-events li[data-to=stale][data-cause=silence]", timeout=15000)
    screenshot(page, "burst-of-status-changes")
    assert watch.problems() == []


def test_a_burst_of_host_status_events_is_handled_once_per_frame(browser, start_dashboard):
    # No real change of status during the test (titan-01 stays online), only the burst's.
    server = start_dashboard(TWIN_STALE_AFTER_SECONDS="3600", TWIN_OFFLINE_AFTER_SECONDS="7200")
    samples_post(server.url, [sample_dict("titan-01")])
    page, watch = live_page(browser, server, "/#host=titan-01")
    page.wait_for_selector("#status-events:not([hidden]) li[data-to]")
    # 20,000 changes in one task, as Socket.IO hands over a burst when a room loses power.
    burst = page.evaluate(
        """() => {
            const d = twinDashboard, handle = d.socket.listeners('host-status')[0];
            const before = {received: d.hostStatus.received, flushes: d.hostStatus.flushes};
            const at = Date.now() - 60000;
            for (let k = 0; k < 20000; k++) {
                const hostname = k % 1000 === 0 ? 'titan-01' : `rack-host-${k}`;
                handle({type: 'host-status', hostname, from: 'online', to: k % 2 ? 'stale' : 'offline',
                        at: new Date(at + k).toISOString(), cause: 'silence'});
            }
            return {before, queued: d.hostStatus.queue.length, flushes: d.hostStatus.flushes};
        }"""
    )
    # Nothing was drawn while they came in: each was queued, then one frame took them all.
    assert burst["queued"] >= 20000
    assert burst["flushes"] == burst["before"]["flushes"]
    page.wait_for_function(f"() => twinDashboard.hostStatus.received >= {burst['before']['received'] + 20000}")
    page.wait_for_function("() => twinDashboard.hostStatus.queue.length === 0")
    assert page.evaluate("twinDashboard.hostStatus.flushes") - burst["before"]["flushes"] <= 2
    # The live server's own clock may add a change or two of real hosts to the burst's 20,000.
    counted = re.search(r"([\d,]+) status changes", page.locator("#status-feed").text_content())
    assert counted and int(counted.group(1).replace(",", "")) >= 20_000
    # The panel keeps the selected host's newest 20 changes: its 20 of the burst.
    assert page.locator("#status-events li[data-to]").count() == 20

    # A hidden tab draws no frames: there a timer takes the queue.
    timer = page.evaluate(
        """() => {
            Object.defineProperty(document, 'hidden', {configurable: true, get: () => true});
            document.dispatchEvent(new Event('visibilitychange'));
            const d = twinDashboard;
            d.socket.listeners('host-status')[0]({type: 'host-status', hostname: 'titan-01', from: 'offline',
                to: 'online', at: new Date().toISOString(), cause: 'data'});
            return d.hostStatus.timer !== null && d.hostStatus.frame === null;
        }"""
    )
    assert timer
    page.wait_for_function("() => twinDashboard.hostStatus.queue.length === 0")
    assert "titan-01 offline → online" in page.locator("#status-feed").text_content()
    assert watch.problems() == []


def test_the_table_sorts_filters_and_is_usable_from_the_keyboard(browser, start_dashboard):
    server = start_dashboard()
    fleet_post(server)
    page, watch = live_page(browser, server)
    page.get_by_role("button", name="Table").click()
    page.wait_for_selector("#table-view tbody tr")

    cpu_header = page.locator("th[data-key=cpu] button")
    cpu_header.click()
    assert page.locator("th[data-key=cpu]").get_attribute("aria-sort") == "ascending"
    ascending = cpu_column(page)
    assert ascending == sorted(ascending)
    cpu_header.focus()
    page.keyboard.press("Enter")
    assert page.locator("th[data-key=cpu]").get_attribute("aria-sort") == "descending"
    descending = cpu_column(page)
    assert descending == sorted(descending, reverse=True)
    assert descending[0] >= ascending[-1]
    screenshot(page, "table-sorted-by-cpu")

    page.locator("[data-filter-rack]").select_option("R01-02")
    racks = set(page.locator("#table-view tbody tr td:nth-child(2)").all_text_contents())
    assert racks == {"R01-02"}
    assert "of 20 hosts" in page.locator("[data-table-info]").text_content()
    page.locator("[data-filter-rack]").select_option("")
    page.locator("[data-filter-status]").select_option("unknown")
    assert page.locator("[data-table-info]").text_content() == "No host matches."
    page.locator("[data-filter-status]").select_option("")

    first = page.locator("#table-view tbody tr").first
    first.focus()
    page.keyboard.press("ArrowDown")
    second = page.evaluate("document.activeElement.dataset.hostname")
    assert second == page.locator("#table-view tbody tr").nth(1).get_attribute("data-hostname")
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => document.querySelector('[data-f=hostname]').textContent === '{second}'")
    assert page.locator(f"#table-view tbody tr[data-hostname='{second}']").get_attribute("aria-selected") == "true"
    assert watch.problems() == []


def test_the_search_finds_a_host_and_flies_to_it(browser, start_dashboard):
    server = start_dashboard()
    fleet_post(server)
    page, watch = live_page(browser, server)
    page.locator("#search").fill("node-00042")
    page.wait_for_selector("#search-suggestions li")
    assert page.locator("#search-suggestions li").first.text_content().startswith("node-00042")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('[data-f=hostname]').textContent === 'node-00042'")
    # The camera ends its flight looking at the host.
    page.wait_for_function(
        """() => {
            const f = twinDashboard.floor, i = twinDashboard.live.index.get('node-00042');
            const p = f.layout.positions, t = f.controls.target;
            return !f.flight && Math.hypot(t.x - p[i*3], t.y - p[i*3+1], t.z - p[i*3+2]) < 1e-3;
        }""",
        timeout=5000,
    )
    assert page.evaluate("location.hash") == "#host=node-00042"
    page.locator("#search").fill("no-such-host")
    assert page.locator("#search-message").text_content() == "No host matches."
    page.locator("#search").fill("")
    screenshot(page, "search-flew-to-host")
    assert watch.problems() == []


@pytest.fixture
def operator(transactional_db, django_user_model):
    return django_user_model.objects.create_user(username="operator", password="correct horse battery")


def test_with_private_reads_the_sign_in_page_comes_first_and_the_session_opens_the_live_stream(
    operator, browser, start_dashboard
):
    server = start_dashboard(TWIN_PUBLIC_READ="false")
    samples_post(server.url, [sample_dict("titan-01")])
    page, watch = page_open(browser, server)
    page.wait_for_url(f"{server.url}/login/?next=/")
    screenshot(page, "sign-in")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "wrong")
    page.click("button[type=submit]")
    assert page.locator("[role=alert]").is_visible()
    watch.failed_requests.clear()  # the refused sign-in is answered 200 with the form again
    page.fill("#id_password", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/")
    page.wait_for_selector(LIVE, timeout=15000)
    page.wait_for_function("() => document.querySelector('#summary-total').textContent === '2 hosts'")
    assert "operator" in page.locator(".user").text_content()
    page.locator(".user button", has_text="Sign out").click()
    page.wait_for_url(f"{server.url}/login/")
    assert watch.problems() == []


def test_the_page_shows_reconnecting_when_the_server_goes_away(browser, start_dashboard):
    server = start_dashboard()
    samples_post(server.url, [sample_dict("titan-01")])
    page, watch = live_page(browser, server)
    server_stop(server)
    page.wait_for_selector("#connection[data-state=reconnecting]", timeout=10000)
    assert "updated" in page.locator("#connection").text_content()
    screenshot(page, "reconnecting")
    # Nothing but the lost connection's own attempts failed.
    assert all("/socket.io/" in p for p in watch.problems()), watch.problems()


def test_a_gap_in_delta_versions_makes_the_page_resync(browser, start_dashboard):
    server = start_dashboard()
    samples_post(server.url, [sample_dict("titan-01")])
    page, watch = live_page(browser, server)
    before = page.evaluate(
        """() => {
            const d = twinDashboard, v = d.live.version;
            const states = d.stats.statesApplied;
            d.socket.listeners('twin-delta')[0]({type: 'twin-delta', twinId: d.live.twinId, version: v + 5,
                baseVersion: v + 4, generatedAt: new Date().toISOString(), hosts: [], removedHosts: [],
                links: [], removedLinks: []});
            return states;
        }"""
    )
    page.wait_for_function(f"() => twinDashboard.stats.statesApplied > {before}", timeout=10000)
    assert page.evaluate("twinDashboard.stats.resyncs") == 1
    page.wait_for_selector(LIVE)
    assert watch.problems() == []


def test_the_browser_store_applies_deltas_exactly_as_the_servers_reference(browser, start_dashboard):
    from twin.delta import delta_apply, state_diff

    server = start_dashboard()
    page, watch = live_page(browser, server)

    def host(name: str, cpu: float, status: str = "online") -> dict:
        return {"hostname": name, "status": status, "metrics": {"cpuLoad": cpu}, "position": {"x": 0, "y": 0, "z": 0}}

    def link(target: str, utilization: float) -> dict:
        return {"id": f"core::{target}", "source": "core", "target": target, "utilization": utilization}

    base = {"type": "twin-state", "twinId": "t", "generatedAt": "2026-01-01T00:00:00.000Z", "version": 1}
    v1 = {**base, "hosts": [host("a", 1), host("b", 2), host("c", 3)], "links": [link("a", 0.1), link("b", 0.2)]}
    v2 = {**base, "hosts": [host("a", 1), host("b", 9, "stale"), host("d", 4)], "links": [link("a", 0.5), link("d", 0)]}
    v3 = {
        **base,
        "hosts": [host("a", 7), host("b", 9, "offline"), host("d", 4)],
        "links": [link("a", 0.5), link("d", 1)],
    }
    d2 = state_diff(before=v1, after=v2, version=2)
    d3 = state_diff(before=v2, after=v3, version=3)
    expected = delta_apply(delta_apply(v1, d2), d3)

    result = page.evaluate(
        """async ([v1, d2, d3]) => {
            const { TwinStore } = await import('/static/dashboard/js/store.js');
            const store = new TwinStore();
            store.load(v1);
            const gap = store.applyDelta({...d3});
            const r2 = store.applyDelta(d2);
            const r3 = store.applyDelta(d3);
            const byName = (a, b) => a.hostname.localeCompare(b.hostname);
            return {gap, r2, r3, version: store.version, hosts: store.hosts.slice().sort(byName),
                    links: store.links.slice().sort((a, b) => a.id.localeCompare(b.id)),
                    index: [...store.index].sort()};
        }""",
        [v1, d2, d3],
    )
    assert result["gap"] == {"applied": False, "reason": "gap"}
    assert result["r2"]["structural"] is True  # c removed, d added
    assert result["r3"]["structural"] is False
    assert result["r3"]["hosts"] == [result["index"][0][1], result["index"][1][1]]  # a and b, in place
    assert result["version"] == 3
    assert result["hosts"] == expected["hosts"]
    assert result["links"] == sorted(expected["links"], key=lambda item: item["id"])
    assert watch.problems() == []


def test_the_browser_store_applies_fields_deltas_exactly_as_the_servers_reference(browser, start_dashboard):
    from twin.delta import delta_apply, delta_fields, state_diff

    server = start_dashboard()
    page, watch = live_page(browser, server)

    def host(name: str, cpu: float, status: str = "online", **extra) -> dict:
        return {"hostname": name, "status": status, "metrics": {"cpuLoad": cpu, "memoryUsedPercent": 50}, **extra}

    base = {"type": "twin-state", "twinId": "t", "generatedAt": "2026-01-01T00:00:00.000Z", "version": 1}
    link = {"id": "core::a", "source": "core", "target": "a", "utilization": 0.1}
    v1 = {**base, "hosts": [host("a", 1, rack="R1"), host("b", 2), host("c", 3)], "links": [link]}
    # a leaves its rack (a lost key: replaced whole), b flips status, c's cpu moves, d arrives.
    v2 = {
        **base,
        "hosts": [host("a", 1), host("b", 2, "offline"), host("c", 8), host("d", 4)],
        "links": [{**link, "utilization": 0.7}],
    }
    fields = delta_fields(delta=state_diff(before=v1, after=v2, version=2), before=v1)
    assert {h["hostname"]: h for h in fields["hosts"]}["b"] == {"hostname": "b", "status": "offline"}
    expected = delta_apply(v1, fields)

    result = page.evaluate(
        """async ([v1, d2]) => {
            const { TwinStore } = await import('/static/dashboard/js/store.js');
            const store = new TwinStore();
            store.load(v1);
            const held = store.hosts.slice();
            const r2 = store.applyDelta(d2);
            const byName = (a, b) => a.hostname.localeCompare(b.hostname);
            return {r2, version: store.version, hosts: store.hosts.slice().sort(byName), links: store.links,
                    previousIsHeld: r2.previous.every((doc) => held.includes(doc))};
        }""",
        [v1, fields],
    )
    assert result["r2"]["structural"] is True  # d added
    assert len(result["r2"]["hosts"]) == 3 and result["previousIsHeld"] is True
    assert result["version"] == 2
    assert result["hosts"] == expected["hosts"] == v2["hosts"]
    assert result["links"] == expected["links"]
    assert watch.problems() == []


def test_the_command_panel_is_hidden_from_a_reader_who_may_not_read_commands(browser, start_dashboard):
    server = start_dashboard()
    samples_post(server.url, [sample_dict("titan-01")])
    page, watch = live_page(browser, server, "/#host=titan-01")
    page.wait_for_function("() => document.querySelector('[data-f=hostname]').textContent === 'titan-01'")
    page.wait_for_timeout(500)
    # An anonymous reader of a public twin may not read commands (whether or not this server has them):
    # the panel stays hidden and is never asked for. tests/dashboard/test_browser_commands.py has an operator's.
    assert page.locator("#commands").is_hidden()
    assert not any("/api/commands" in url for url in watch.requests)
    if page_features()["history"]:
        page.wait_for_selector("#timeline:not([hidden])")
    else:
        assert page.locator("#timeline").is_hidden()
        assert "since this page opened" in page.locator("[data-history-note]").text_content()
    assert watch.problems() == []


def test_a_changed_host_link_selects_that_host_on_the_open_page_and_the_page_keeps_the_link(browser, start_dashboard):
    server = start_dashboard()
    fleet_post(server)
    page, watch = live_page(browser, server)
    page.evaluate(
        "() => { window.hashChanges = 0; addEventListener('hashchange', () => { window.hashChanges += 1; }); }"
    )

    # A link followed on the open page (the address edited): that host is selected and flown to.
    page.evaluate("() => { location.hash = '#host=node-00042'; }")
    page.wait_for_function("() => document.querySelector('[data-f=hostname]').textContent === 'node-00042'")
    page.wait_for_function(
        """() => {
            const f = twinDashboard.floor, i = twinDashboard.live.index.get('node-00042');
            const p = f.layout.positions, t = f.controls.target;
            return f.selected === i && !f.flight && Math.hypot(t.x - p[i*3], t.y - p[i*3+1], t.z - p[i*3+2]) < 1e-3;
        }""",
        timeout=5000,
    )
    screenshot(page, "host-link-followed")

    # A host the twin does not hold changes nothing, as when the page opens with it.
    page.evaluate("() => { location.hash = '#host=no-such-host'; }")
    page.wait_for_function("() => window.hashChanges === 2")
    assert page.locator("[data-f=hostname]").text_content() == "node-00042"

    # Selected in the page: the link names it, and no hashchange comes back (no loop, no history entry).
    page.get_by_role("button", name="Table").click()
    page.locator("#table-view tbody tr[data-hostname='node-00007']").click()
    page.wait_for_function("() => document.querySelector('[data-f=hostname]').textContent === 'node-00007'")
    assert page.evaluate("location.hash") == "#host=node-00007"
    page.wait_for_timeout(300)
    assert page.evaluate("window.hashChanges") == 2

    # Back through the address's history: each entry selects its host again, the first (none) nothing.
    page.go_back()
    page.wait_for_function("() => document.querySelector('[data-f=hostname]').textContent === 'node-00042'")
    page.go_back()
    page.wait_for_selector("[data-panel-empty]:not([hidden])")
    assert page.evaluate("location.hash") == ""
    assert page.evaluate("document.body.classList.contains('has-selection')") is False
    assert watch.problems() == []


@pytest.fixture
def a_host_an_admin_marked_virtual(transactional_db, admin_client):
    """titan-01 and titan-02 report; an admin marks titan-02 virtual (a PDU, say) in the host admin."""
    from django.urls import reverse

    from hosts.models import Host
    from tests.conftest import ingest_at
    from tests.hosts.test_admin import _host_form

    ingest_at([sample_dict("titan-01"), sample_dict("titan-02", position={"x": 3, "y": 0.4, "z": 0})])
    host = Host.objects.get(hostname="titan-02")
    response = admin_client.post(reverse("admin:hosts_host_change", args=[host.pk]), _host_form(host, is_virtual="on"))
    assert response.status_code == 302, response.content


def test_a_host_an_admin_marked_virtual_is_drawn_as_a_virtual_node(
    a_host_an_admin_marked_virtual, browser, start_dashboard
):
    server = start_dashboard()
    page, watch = live_page(browser, server, "/#host=titan-02")
    page.wait_for_function("() => document.querySelector('[data-f=hostname]').textContent === 'titan-02'")
    # Its agent's version and platform say nothing virtual: the document's isVirtual does.
    assert page.evaluate("twinDashboard.floor.agentMesh.count") == 1  # titan-01
    assert page.evaluate("twinDashboard.floor.virtualMesh.count") == 2  # the core switch and titan-02, diamonds
    assert page.evaluate("twinDashboard.floor.meshOf[twinDashboard.live.index.get('titan-02')]") == 1
    assert page.locator("[data-f=kind]").text_content() == "virtual node (Linux-x86_64)"
    assert page.locator("[data-f=agent]").text_content() == "0.1.0-dev"
    page.wait_for_function("() => twinDashboard.floor.stats.firstFrameAt !== null")
    screenshot(page, "host-marked-virtual")
    assert watch.problems() == []


def test_the_api_client_drops_a_stale_answer_and_hands_on_the_servers_refusal(browser, start_dashboard):
    server = start_dashboard()
    samples_post(server.url, [sample_dict("titan-01")])
    page, watch = live_page(browser, server)
    result = page.evaluate(
        """async () => {
            const { ApiError, RequestGuard } = await import('/static/dashboard/js/api.js');
            const api = twinDashboard.api, guard = new RequestGuard();
            const outcome = (asked) => asked.then(
                (body) => ({ keys: Object.keys(body) }),
                (e) => ({ apiError: e instanceof ApiError, status: e.status, code: e.code, detail: e.detail,
                          stale: e.stale }));
            // Asked first, answered after a newer request of the same purpose: never shown.
            const older = outcome(api.get('twinState', { guard }));
            guard.renew();
            const newer = outcome(api.get('hostEvents', { params: { hostname: 'titan-01' }, guard }));
            return {
                older: await older,
                newer: await newer,
                refused: await outcome(api.get('twinState', { query: { at: 'yesterday-ish' } })),
                unknown: await outcome(api.get('hostEvents', { params: { hostname: 'no-such-host' } })),
                url: api.url('hostMetrics', { hostname: 'titan-01' }, { from: 'a', to: undefined }),
            };
        }"""
    )
    assert result["older"] == {"apiError": True, "status": 200, "code": "stale", "detail": None, "stale": True}
    assert result["newer"] == {"keys": ["hostname", "events"]}
    for name, path in (("refused", "/api/twin/state?at=yesterday-ish"), ("unknown", "/api/hosts/no-such-host/events")):
        status, body = get_json(server.url + path)
        assert result[name] == {
            "apiError": True,
            "status": status,
            "code": body["error"],
            "detail": body["detail"],
            "stale": False,
        }
    assert result["url"] == "/api/hosts/titan-01/metrics?from=a"
    # The two refusals asked on purpose are the only failed requests (the browser logs each as it comes).
    assert sorted(watch.failed_requests) == sorted(
        [f"400 {server.url}/api/twin/state?at=yesterday-ish", f"404 {server.url}/api/hosts/no-such-host/events"]
    )
    assert len(watch.console_errors) == 2 and all("Failed to load resource" in e for e in watch.console_errors)
    assert watch.page_errors == [] and watch.outside_requests == []
