"""The command panel, history charts and time slider, against the agreed shapes, answered by the test itself.

Here the test answers those endpoints with documents in the agreed shapes
(everything else is the live server), so the page's side of both contracts
runs in the browser whatever the server serves. The twin now serves commands:
``test_browser_commands`` covers the real thing (a command sent from the panel,
run by an agent, followed live). History (/work/briefs/history-api.md) is not
served yet.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from dashboard.demo import iso
from tests.conftest import sample_dict
from tests.dashboard.conftest import page_open, screenshot

pytestmark = pytest.mark.e2e

ACTIONS = {
    "actions": [
        {"action": "ping", "description": "Answers at once.", "argsSchema": {"type": "object", "properties": {}}},
        {
            "action": "set-interval",
            "description": "Changes the collection interval.",
            "argsSchema": {
                "type": "object",
                "properties": {"seconds": {"type": "integer", "minimum": 1, "maximum": 3600}},
                "required": ["seconds"],
            },
        },
    ]
}


def command_doc(command_id: int, action: str, state: str, args: dict | None = None) -> dict:
    now = iso(datetime.now(UTC))
    return {
        "id": command_id,
        "action": action,
        "args": args or {},
        "state": "completed" if state == "succeeded" else "pending",
        "issuedBy": "root",
        "issuedAt": now,
        "comment": "",
        "timeoutSeconds": 60,
        "deliveryTimeoutSeconds": 300,
        "maxConcurrency": 10,
        "maxErrors": 0,
        "counts": {"queued": int(state == "queued"), "succeeded": int(state == "succeeded")},
        "invocations": [{"host": "titan-01", "state": state, "queuedAt": now, "exitCode": None, "output": ""}],
    }


# Before the page's modules run (readyState "interactive" comes first), tell it that the
# server has commands and history. Rewriting the document in flight instead would make
# chromium treat it as not from this host and block its Socket.IO connection to loopback.
def features_on(*names: str) -> str:
    script = """
document.addEventListener("readystatechange", () => {
  if (document.readyState !== "interactive") return;
  const element = document.getElementById("dashboard-config");
  const config = JSON.parse(element.textContent);
  for (const name of NAMES) config.features[name] = true;
  element.textContent = JSON.stringify(config);
});
"""
    return script.replace("NAMES", json.dumps(list(names)))


@pytest.fixture
def root(transactional_db, django_user_model):
    return django_user_model.objects.create_superuser(username="root", password="pw-for-tests-only")


def test_the_command_panel_lists_sends_and_follows_commands(root, browser, start_dashboard):
    server = start_dashboard()
    samples_posted = sample_dict("titan-01")
    from dashboard.demo import samples_post

    samples_post(server.url, [samples_posted])
    context = browser.new_context(viewport={"width": 1600, "height": 900})
    login = context.new_page()
    login.goto(server.url + "/login/?next=/")
    login.fill("#id_username", "root")
    login.fill("#id_password", "pw-for-tests-only")
    login.click("button[type=submit]")
    login.wait_for_url(server.url + "/")
    login.close()
    posted: list[dict] = []

    def commands(route) -> None:
        request = route.request
        if request.method == "POST":
            body = json.loads(request.post_data)
            posted.append({"body": body, "headers": request.headers})
            route.fulfill(status=201, json=command_doc(18, body["action"], "queued", body["args"]))
        else:
            route.fulfill(json={"results": [command_doc(17, "ping", "succeeded")], "next": None})

    context.add_init_script(features_on("commands"))
    context.route(server.url + "/api/commands/actions", lambda route: route.fulfill(json=ACTIONS))
    context.route(server.url + "/api/commands?*", commands)
    context.route(server.url + "/api/commands", commands)
    page, watch = page_open(browser, server, "/#host=titan-01", context=context)
    page.wait_for_selector("#connection[data-state=live]")
    page.wait_for_selector("#commands:not([hidden]) [data-command-id='17']")
    assert "succeeded" in page.locator("[data-command-id='17'] .command-state").text_content()

    page.locator("[data-command-action]").select_option("set-interval")
    page.fill("#commands input[name=seconds]", "30")
    page.click("#commands button[type=submit]")
    page.wait_for_selector("[data-command-id='18']")
    assert posted[0]["body"] == {"action": "set-interval", "args": {"seconds": 30}, "targets": {"hosts": ["titan-01"]}}
    assert posted[0]["headers"]["idempotency-key"]
    assert posted[0]["headers"]["x-csrftoken"]
    assert "Command #18 sent." in page.locator("[data-command-message]").text_content()

    # A live `command-update` (as Socket.IO delivers it to staff) moves the command on.
    page.evaluate(
        """() => twinDashboard.socket.listeners('command-update')[0]({type: 'command-update', id: 18,
            host: 'titan-01', action: 'set-interval', state: 'succeeded', commandState: 'completed',
            at: new Date().toISOString(), result: {exitCode: 0, output: 'interval 30 s', outputTruncated: false,
            data: {intervalSeconds: 30}}})"""
    )
    page.wait_for_function(
        "() => document.querySelector(\"[data-command-id='18'] .command-state\").textContent === 'succeeded'"
    )
    assert "interval 30 s" in page.locator("[data-command-id='18'] pre").text_content()
    screenshot(page, "commands-panel")
    assert watch.problems() == []
    context.close()


def test_history_charts_and_the_time_slider_use_the_history_api(browser, start_dashboard):
    server = start_dashboard()
    from dashboard.demo import samples_post

    samples_post(server.url, [sample_dict("titan-01"), sample_dict("titan-02", position={"x": 3, "y": 0.4, "z": 0})])
    now = datetime.now(UTC)
    times = [iso(now - timedelta(minutes=60 - i)) for i in range(60)]
    series_requests: list[str] = []
    state_requests: list[str] = []

    def series(route) -> None:
        series_requests.append(route.request.url)
        values = {"avg": [10.0 + i for i in range(60)], "min": [5.0] * 60, "max": [90.0] * 60}
        route.fulfill(
            json={
                "hostname": "titan-01",
                "from": times[0],
                "to": iso(now),
                "stepSeconds": 60,
                "resolution": "raw",
                "times": times,
                "series": {
                    k: values for k in ("cpuLoad", "memoryUsedPercent", "loadAverage", "netBytesTx", "netBytesRx")
                },
            }
        )

    def state(route) -> None:
        if "at=" not in route.request.url:
            route.continue_()
            return
        state_requests.append(route.request.url)
        at = route.request.url.split("at=")[1]
        doc = route.fetch().json()  # the live server's state (it ignores ?at=), turned into the past
        doc["generatedAt"] = at.replace("%3A", ":")
        for host in doc["hosts"]:
            if host["hostname"] == "titan-02":
                host["status"] = "offline"
        route.fulfill(json=doc)

    context = browser.new_context(viewport={"width": 1600, "height": 900})
    context.add_init_script(features_on("history"))
    context.route(server.url + "/api/hosts/*/metrics?*", series)
    context.route(server.url + "/api/twin/state?*", state)
    page, watch = page_open(browser, server, "/#host=titan-01", context=context)
    page.wait_for_selector("#connection[data-state=live]")
    page.wait_for_selector("#timeline:not([hidden])")
    page.wait_for_function("() => document.querySelector('[data-history-note]').textContent.includes('history API')")
    assert any("titan-01" in url and "fields=cpuLoad" in url for url in series_requests)

    page.locator("#timeline-range").fill("-30")
    page.wait_for_selector("#connection[data-state=history]")
    assert state_requests and "at=" in state_requests[0]
    assert page.locator("[data-status-chip=offline] [data-count]").text_content() == "1"
    screenshot(page, "time-slider-history")
    page.click("#timeline-live")
    page.wait_for_selector("#connection[data-state=live]")
    assert page.locator("[data-status-chip=offline] [data-count]").text_content() == "0"
    assert watch.problems() == []
    context.close()
