"""The command panel against the real server: a staff operator sends a command, an agent runs it, the page follows."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from commands.models import Command
from hosts.services import enrollment_key_create
from tests.dashboard.conftest import page_open, screenshot

pytestmark = pytest.mark.e2e
SUCCEEDED_SHOWN = (
    "() => [...document.querySelectorAll('#commands .command-state')].some(e => e.textContent === 'succeeded')"
)


class PollingAgent:
    """A host's agent on the long poll, in a thread: acknowledges and answers every invocation it gets."""

    def __init__(self, url: str, credential: dict) -> None:
        self.url, self.key_id, self.secret = url, credential["keyId"], credential["signingSecret"]
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _request(self, method: str, path: str, body: bytes | None = None) -> dict:
        stamp = str(int(time.time()))
        signed = body if body is not None else f"{method} {path}".encode()
        signature = hmac.new(self.secret.encode(), stamp.encode() + b"." + signed, hashlib.sha256).hexdigest()
        headers = {"X-Twin-Key-Id": self.key_id, "X-Twin-Timestamp": stamp, "X-Twin-Signature": f"sha256={signature}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.url + path, data=body, headers=headers, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                for invocation in self._request("GET", "/api/commands/pending?wait=2")["invocations"]:
                    path = f"/api/commands/{invocation['commandId']}/result"
                    self._request("POST", path, json.dumps({"status": "running"}).encode())
                    outcome = {"status": "succeeded", "exit_code": 0, "output": "pong from titan-01", "data": {}}
                    self._request("POST", path, json.dumps(outcome).encode())
            except OSError as exc:  # as an agent does: note it, and ask again
                self.errors.append(repr(exc))
                time.sleep(0.5)


def db_read(fn):
    """Run an ORM read on a thread of its own and close its connection.

    While Playwright's loop runs, the ORM on the test's own thread would open a
    connection pytest-django never closes (and the test database could not be
    dropped at the end).
    """

    def read():
        try:
            return fn()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(read).result()


@pytest.fixture
def enrollment(transactional_db) -> str:
    return enrollment_key_create(name="browser")[1]


@pytest.fixture
def operator(transactional_db, django_user_model):
    user = django_user_model.objects.create_user("olga", password="pw-for-tests-only", is_staff=True)
    from django.contrib.auth.models import Permission

    user.user_permissions.add(*Permission.objects.filter(codename__in=["add_command", "view_command"]))
    return user


@pytest.fixture
def token(operator) -> str:
    """The operator's API token, for a command sent without the page (made before the browser starts)."""
    from rest_framework.authtoken.models import Token

    return Token.objects.create(user=operator).key


def test_a_staff_operator_sends_a_command_from_the_host_panel_and_sees_it_succeed_live(
    operator, token, enrollment, browser, start_dashboard
):
    server = start_dashboard()
    key = enrollment
    registration = urllib.request.Request(
        server.url + "/api/hosts/register",
        data=json.dumps({"hostname": "titan-01", "platform": "Linux-x86_64", "agent_version": "1.0.0"}).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(registration, timeout=10) as response:
        agent = PollingAgent(server.url, json.loads(response.read()))
    agent.thread.start()
    context = browser.new_context(viewport={"width": 1600, "height": 900})
    try:
        login = context.new_page()
        login.goto(server.url + "/login/?next=/")
        login.fill("#id_username", "olga")
        login.fill("#id_password", "pw-for-tests-only")
        login.click("button[type=submit]")
        login.wait_for_url(server.url + "/")
        login.close()
        page, watch = page_open(browser, server, "/#host=titan-01", context=context)
        posted: list[dict] = []
        page.on("request", lambda r: r.method == "POST" and "/api/commands" in r.url and posted.append(r.headers))
        page.wait_for_selector("#connection[data-state=live]")
        page.wait_for_selector("#commands:not([hidden]) [data-command-action] option[value=ping]", state="attached")
        # The real catalogue, less what this operator may not send (shell needs commands.run_shell).
        offered = page.locator("[data-command-action] option").evaluate_all("options => options.map(o => o.value)")
        assert sorted(offered) == ["collect-now", "ping", "restart-agent", "set-interval"]
        page.locator("[data-command-action]").select_option("set-interval")
        page.fill("#commands input[name=seconds]", "30")
        page.click("#commands button[type=submit]")
        try:
            page.wait_for_function(SUCCEEDED_SHOWN, timeout=20000)
        except Exception:
            states = db_read(lambda: list(Command.objects.values_list("invocations__state", flat=True)))
            raise AssertionError(
                f"invocations {states}; agent errors {agent.errors}; page {watch.problems()}"
            ) from None
        command = db_read(Command.objects.get)
        item = page.locator(f"[data-command-id='{command.pk}']")
        assert "pong from titan-01" in item.locator("pre").text_content()
        assert (command.issued_by_name, command.action, command.args) == ("olga", "set-interval", {"seconds": 30})
        assert posted[0]["idempotency-key"] and posted[0]["x-csrftoken"]
        assert f"Command #{command.pk} sent." in page.locator("[data-command-message]").text_content()
        screenshot(page, "commands-panel-live")

        # A page opened later reads the same from the list API (GET /api/commands?host=).
        later, later_watch = page_open(browser, server, "/#host=titan-01", context=context)
        later.wait_for_selector(f"[data-command-id='{command.pk}'] .command-state.state-succeeded")
        assert (
            "#" + str(command.pk) + " set-interval" in later.locator(f"[data-command-id='{command.pk}']").text_content()
        )
        # An answer read after the live events that followed it never takes the command back.
        state = later.evaluate(
            """(id) => {
                const panel = twinDashboard.commands;
                panel.take({id, action: 'set-interval', issuedAt: new Date().toISOString(), issuedBy: 'olga',
                            invocations: [{host: 'titan-01', state: 'queued', exitCode: null, output: ''}]});
                return panel.commands.get(id).state;
            }""",
            command.pk,
        )
        assert state == "succeeded"

        # A command sent by another way (the API, with a token): the open page hears of it
        # live and reads who sent it from the command's document (GET /api/commands/{id}).
        sent = urllib.request.Request(
            server.url + "/api/commands",
            data=json.dumps({"action": "ping", "targets": {"hosts": ["titan-01"]}, "comment": "from curl"}).encode(),
            headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(sent, timeout=10) as response:
            other = json.loads(response.read())["id"]
        later.wait_for_selector(f"[data-command-id='{other}'] .command-state.state-succeeded", timeout=20000)
        # Who sent it comes with the document, which may be answered after the last event.
        later.wait_for_selector(f"[data-command-id='{other}'] .muted:has-text('olga')", timeout=10000)
        assert any(url.endswith(f"/api/commands/{other}") for url in later_watch.requests)
        assert watch.problems() == []
        assert later_watch.problems() == []
    finally:
        agent.stop.set()
        agent.thread.join(timeout=10)
        context.close()
