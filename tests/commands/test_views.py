"""The command lifecycle over HTTP: operators with tokens, agents with their host's signature."""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client

from commands.models import Invocation, InvocationTransition, ShellAccess
from hosts.credentials import signature_compute
from hosts.models import Host, Rack
from tests.commands.conftest import Operator, grant, result_path

pytestmark = pytest.mark.django_db

PENDING = "/api/commands/pending?wait=0"


def test_the_full_happy_path_over_http_with_a_signed_agent(operator, agents):
    agent = agents("titan-01")
    created = operator.send(action="set-interval", args={"seconds": 30}, comment="slower, please")
    assert created.status_code == 201, created.content
    command = created.json()
    assert command["state"] == "pending" and command["issuedBy"] == "alice" and command["comment"] == "slower, please"
    assert command["invocations"][0]["state"] == "queued"
    # The agent's next batch answer carries the invocation, beside the seed's keys.
    batch = agent.post()
    assert batch.status_code == 202
    assert batch.json()["invocations"] == [
        {
            "commandId": command["id"],
            "action": "set-interval",
            "args": {"seconds": 30},
            "timeoutSeconds": 60,
            "issuedAt": command["issuedAt"],
        }
    ]
    ack = agent.post_json(result_path(command["id"]), {"status": "running", "started_at": "2030-01-01T00:00:00Z"})
    assert ack.status_code == 200 and ack.json()["state"] == "running"
    assert operator.read(command["id"])["state"] == "in_progress"
    outcome = {
        "status": "succeeded",
        "exit_code": 0,
        "output": "interval is now 30 s",
        "data": {"intervalSeconds": 30},
        "started_at": "2030-01-01T00:00:00Z",
        "finished_at": "2030-01-01T00:00:01Z",
    }
    done = agent.post_json(result_path(command["id"]), outcome)
    assert done.status_code == 200, done.content
    # A retried report of the same outcome is accepted and changes nothing.
    assert agent.post_json(result_path(command["id"]), outcome).status_code == 200
    final = operator.read(command["id"])
    [invocation] = final["invocations"]
    assert final["state"] == "completed" and final["counts"]["succeeded"] == 1
    assert invocation | {"transitions": []} == invocation | {
        "host": "titan-01",
        "state": "succeeded",
        "cause": "agent",
        "exitCode": 0,
        "output": "interval is now 30 s",
        "outputTruncated": False,
        "data": {"intervalSeconds": 30},
        "agentStartedAt": "2030-01-01T00:00:00.000Z",
        "agentFinishedAt": "2030-01-01T00:00:01.000Z",
        "transitions": [],
    }
    assert [(t["state"], t["cause"]) for t in invocation["transitions"]] == [
        ("queued", "created"),
        ("dispatched", "batch"),
        ("running", "agent"),
        ("succeeded", "agent"),
    ]
    # Nothing is handed out any more.
    assert "invocations" not in agent.post().json()


def test_the_long_poll_hands_out_what_is_waiting_and_an_empty_list_otherwise(operator, agents):
    agent = agents("titan-01")
    assert agent.get(PENDING).json() == {"invocations": []}
    command = operator.send(action="ping").json()
    answer = agent.get(PENDING)
    assert answer.status_code == 200 and answer["Cache-Control"] == "no-store"
    assert [i["commandId"] for i in answer.json()["invocations"]] == [command["id"]]
    assert operator.read(command["id"])["invocations"][0]["transitions"][-1]["cause"] == "poll"
    # Not acknowledged yet: handed out again, so a lost answer loses nothing.
    assert [i["commandId"] for i in agent.get(PENDING).json()["invocations"]] == [command["id"]]


@pytest.mark.parametrize(
    ("signed", "status"),
    [
        (f"GET {PENDING}", 200),
        ("GET /api/commands/pending?wait=25", 401),  # the signature covers the query too
        (f"POST {PENDING}", 401),
        ("", 401),  # a body's rule (nothing after the dot) does not sign a GET
    ],
)
def test_a_long_poll_is_signed_over_its_request_line(agents, signed, status):
    agent = agents("titan-01")
    stamp = str(int(time.time()))
    headers = {
        "X-Twin-Key-Id": agent.key_id,
        "X-Twin-Timestamp": stamp,
        "X-Twin-Signature": signature_compute(secret=agent.secret, timestamp=stamp, body=signed.encode()),
    }
    response = agent.client.get(PENDING, headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response.json()["error"] == "bad_signature"
        assert response["WWW-Authenticate"].startswith("Twin-HMAC-SHA256")


def test_a_stale_or_revoked_long_poll_is_refused_as_a_batch_would_be(agents):
    agent = agents("titan-01")
    assert agent.get(PENDING, timestamp=int(time.time()) - 3600).json()["error"] == "stale_timestamp"
    agents("titan-01")  # registering again rotates the credential
    assert agent.get(PENDING).json()["error"] == "revoked"


def test_a_long_poll_without_a_signature_or_with_a_bad_wait_is_refused(client, agents):
    assert client.get(PENDING).status_code == 401
    assert client.get(PENDING).json()["error"] == "not_authenticated"
    agent = agents("titan-01")
    for wait in ("26", "-1", "soon"):
        response = agent.get(f"/api/commands/pending?wait={wait}")
        assert response.status_code == 400 and response.json()["error"] == "invalid_wait"
    assert client.post("/api/commands/pending").status_code == 405


def test_another_host_can_neither_see_nor_acknowledge_nor_report_an_invocation(operator, agents):
    target, other = agents("titan-01", "titan-02")
    command = operator.send(action="ping").json()
    assert other.get(PENDING).json() == {"invocations": []}
    assert "invocations" not in other.post().json()
    for report in ({"status": "running"}, {"status": "succeeded", "exit_code": 0}):
        response = other.post_json(result_path(command["id"]), report)
        assert response.status_code == 404 and response.json()["error"] == "not_found"
    # Exactly the answer for a command that does not exist: nothing is revealed.
    missing = other.post_json(result_path(command["id"] + 1000), {"status": "running"})
    assert missing.status_code == 404
    assert missing.json()["detail"].replace(str(command["id"] + 1000), "N") == response.json()["detail"].replace(
        str(command["id"]), "N"
    )
    assert operator.read(command["id"])["invocations"][0]["state"] == "queued"
    assert target.get(PENDING).json()["invocations"][0]["commandId"] == command["id"]


def test_reports_need_the_hosts_signature_and_operators_tokens_do_not_count(operator, agents):
    agents("titan-01")
    command = operator.send(action="ping").json()
    response = operator.client.post(
        result_path(command["id"]), data=b'{"status": "running"}', content_type="application/json"
    )
    assert response.status_code == 401


def test_what_names_no_command_is_a_404_that_says_so_whatever_the_size_of_its_id(operator, agents):
    agent = agents("titan-01")
    for command_id in (10_000, 2**63):
        cancelled = operator.cancel(command_id)
        read = operator.client.get(f"/api/commands/{command_id}")
        reported = agent.post_json(result_path(command_id), {"status": "running"})
        for response in (cancelled, read):
            assert response.status_code == 404
            assert response.json() == {"error": "not_found", "detail": f"No command {command_id}."}
        assert reported.status_code == 404
        assert reported.json() == {
            "error": "not_found",
            "detail": f"Command {command_id} has no invocation for titan-01.",
        }


@pytest.mark.parametrize(
    ("state", "report"),
    [
        ("queued", {"status": "running"}),
        ("queued", {"status": "succeeded", "exit_code": 0}),
        ("running", {"status": "failed", "exit_code": 1, "output": "other"}),
        ("succeeded", {"status": "running"}),
        ("succeeded", {"status": "failed", "exit_code": 1}),
        ("failed", {"status": "succeeded", "exit_code": 0}),
        ("timed_out", {"status": "succeeded", "exit_code": 0}),
        ("timed_out", {"status": "running"}),
        ("cancelled", {"status": "running"}),
        ("cancelled", {"status": "succeeded", "exit_code": 0}),
        ("undeliverable", {"status": "running"}),
        ("undeliverable", {"status": "failed"}),
    ],
)
def test_an_agents_illegal_move_is_a_409_with_the_current_state(operator, agents, state, report):
    agent = agents("titan-01")
    command = operator.send(action="ping").json()
    if state == "running":
        agent.get(PENDING)
        agent.post_json(result_path(command["id"]), {"status": "running"})
        agent.post_json(result_path(command["id"]), {"status": "succeeded", "exit_code": 0})
        state = "succeeded"  # an outcome different from the first is refused with the state it ended in
    elif state != "queued":
        Invocation.objects.filter(command_id=command["id"]).update(state=state)
    response = agent.post_json(result_path(command["id"]), report)
    assert response.status_code == 409, response.content
    assert response.json() == {"error": "invalid_transition", "detail": response.json()["detail"], "state": state}


def test_cancel_while_dispatched_cancels_and_the_agent_learns_it_on_acknowledging(operator, agents):
    agent = agents("titan-01")
    command = operator.send(action="restart-agent").json()
    assert agent.get(PENDING).json()["invocations"]
    cancelled = operator.cancel(command["id"])
    assert cancelled.status_code == 200
    assert cancelled.json()["state"] == "cancelled" and cancelled.json()["cancelledBy"] == "alice"
    assert cancelled.json()["invocations"][0]["transitions"][-1] == {
        "state": "cancelled",
        "at": cancelled.json()["cancelledAt"],
        "cause": "operator",
        "by": "alice",
    }
    refused = agent.post_json(result_path(command["id"]), {"status": "running"})
    assert refused.status_code == 409 and refused.json()["state"] == "cancelled"
    assert agent.get(PENDING).json() == {"invocations": []}
    again = operator.cancel(command["id"])
    assert again.status_code == 409 and again.json()["state"] == "cancelled"


def test_output_beyond_the_limit_is_truncated_with_a_marker(operator, agents, settings):
    settings.TWIN_COMMAND_OUTPUT_MAX_BYTES = 1000
    agent = agents("titan-01")
    command = operator.send(action="ping").json()
    agent.get(PENDING)
    answer = agent.post_json(result_path(command["id"]), {"status": "succeeded", "exit_code": 0, "output": "x" * 1500})
    assert answer.status_code == 200
    assert answer.json()["output"] == "x" * 1000 + "\n…[truncated 500 bytes]"
    assert answer.json()["outputTruncated"] is True
    stored = Invocation.objects.get(command_id=command["id"])
    assert stored.output_truncated and len(stored.output.encode()) < 1100


@pytest.mark.parametrize(
    "report",
    [
        {"status": "done"},
        {"status": "succeeded", "exit_code": "zero"},
        {"status": "succeeded", "data": {"text": "nul\u0000inside"}},
        {"status": "succeeded", "started_at": "yesterday"},
        {"status": "succeeded", "started_at": "2030-01-01T00:00:00"},
        {"status": "succeeded", "finished_at": "0001-01-01T00:00:00+05:00"},
        {"status": "running", "exit_code": 0},
        {"status": "succeeded", "unknown": 1},
    ],
)
def test_a_malformed_report_is_refused_and_stores_nothing(operator, agents, report):
    agent = agents("titan-01")
    command = operator.send(action="ping").json()
    agent.get(PENDING)
    response = agent.post_json(result_path(command["id"]), report)
    assert response.status_code == 400 and response.json()["error"] == "invalid_result", response.content
    assert Invocation.objects.get(command_id=command["id"]).state == "dispatched"


def test_a_retried_create_with_the_same_idempotency_key_returns_the_first_command(operator, agents):
    agents("titan-01")
    first = operator.send(action="ping", headers={"Idempotency-Key": "retry-me-1"})
    again = operator.send(action="ping", headers={"Idempotency-Key": "retry-me-1"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert Invocation.objects.count() == 1
    other = operator.send(action="collect-now", headers={"Idempotency-Key": "retry-me-1"})
    assert other.status_code == 422 and other.json()["error"] == "idempotency_key_reused"
    bad = operator.send(action="ping", headers={"Idempotency-Key": "ключ"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_idempotency_key"
    # Keys are per user: another operator's same key is another command.
    bob = Operator(type(operator.user).objects.create_user("bob", password="a-long-password-1"))
    grant(bob.user, "add_command")
    assert bob.send(action="ping", headers={"Idempotency-Key": "retry-me-1"}).status_code == 201


@pytest.mark.parametrize(
    ("document", "status", "code"),
    [
        ({"action": "format-disk"}, 400, "unknown_action"),
        ({"action": "set-interval", "args": {"seconds": 0}}, 400, "invalid_args"),
        ({"action": "set-interval", "args": {}}, 400, "invalid_args"),
        ({"action": "ping", "args": {"extra": 1}}, 400, "invalid_args"),
        ({"action": "ping", "args": []}, 400, "invalid_args"),
        ({"action": "ping", "targets": {}}, 400, "no_targets"),
        ({"action": "ping", "targets": {"hosts": []}}, 400, "no_targets"),
        ({"action": "ping", "targets": {"hosts": ["nowhere-01"]}}, 400, "unknown_host"),
        ({"action": "ping", "targets": {"hosts": ["core-switch"]}}, 400, "unknown_host"),
        ({"action": "ping", "targets": {"rack": "R9"}}, 400, "unknown_rack"),
        ({"action": "ping", "targets": {"rack": "EMPTY"}}, 400, "no_targets"),
        ({"action": "ping", "targets": {"hosts": ["titan-01"], "rack": "R1"}}, 400, "invalid_command"),
        ({"action": "ping", "timeout_seconds": 3601}, 400, "invalid_command"),
        ({"action": "ping", "comment": "nul\u0000"}, 400, "invalid_command"),
        ({"action": "shell", "args": {"command": "uptime"}}, 403, "permission_denied"),
    ],
)
def test_a_create_is_refused_with_a_code_that_says_why_and_stores_nothing(operator, agents, document, status, code):
    agents("titan-01")
    Rack.objects.create(name="EMPTY")
    response = operator.send(**document)
    assert (response.status_code, response.json()["error"]) == (status, code), response.content
    assert response.json()["detail"]
    assert not Invocation.objects.exists()


def test_operators_need_the_permission_and_anonymous_callers_a_login(client, django_user_model, agents):
    agents("titan-01")
    assert client.get("/api/commands").status_code == 401
    reader = Operator(django_user_model.objects.create_user("reader", password="a-long-password-1"))
    assert reader.send(action="ping").status_code == 403
    assert reader.client.get("/api/commands").status_code == 403
    grant(reader.user, "view_command")
    assert reader.client.get("/api/commands").status_code == 200
    assert reader.send(action="ping").status_code == 403


def test_shell_is_refused_unless_enabled_on_every_target_and_the_operator_may_run_it(shell_operator, agents):
    agents("titan-01", "titan-02")
    shell = {"action": "shell", "args": {"command": "uptime"}, "targets": {"hosts": ["titan-01", "titan-02"]}}
    refused = shell_operator.send(**shell)
    assert refused.status_code == 403 and refused.json()["error"] == "shell_not_enabled"
    assert "titan-01" in refused.json()["detail"]
    ShellAccess.objects.create(
        host=Host.objects.get(hostname="titan-01"), granted_by="admin", granted_at="2030-01-01T00:00Z"
    )
    still = shell_operator.send(**shell)
    assert (
        still.status_code == 403 and "titan-02" in still.json()["detail"] and "titan-01" not in still.json()["detail"]
    )
    assert shell_operator.send(**(shell | {"targets": {"hosts": ["titan-01"]}})).status_code == 201


def test_commands_are_listed_newest_first_with_filters_and_a_cursor(operator, agents):
    first, second = agents("titan-01", "titan-02")
    rack = Rack.objects.create(name="R7")
    Host.objects.filter(hostname="titan-02").update(rack=rack)
    ids = [operator.send(action="ping").json()["id"] for _ in range(3)]
    on_two = operator.send(action="collect-now", targets={"hosts": ["titan-02"]}).json()["id"]
    operator.cancel(ids[0])
    page = operator.client.get("/api/commands?limit=2").json()
    assert [c["id"] for c in page["commands"]] == [on_two, ids[2]]
    rest = operator.client.get(f"/api/commands?limit=2&cursor={page['next']}").json()
    assert [c["id"] for c in rest["commands"]] == [ids[1], ids[0]] and rest["next"] is None

    def listed(query: str) -> list[int]:
        response = operator.client.get(f"/api/commands?{query}")
        assert response.status_code == 200, response.content
        return [c["id"] for c in response.json()["commands"]]

    assert listed("host=titan-02") == [on_two]
    assert listed("rack=R7") == [on_two]
    assert listed("action=ping") == ids[::-1]
    assert listed("state=cancelled") == [ids[0]]
    assert listed("state=pending") == [on_two, ids[2], ids[1]]
    assert listed("state=completed") == []
    # A host's panel: each command carries that host's invocation.
    mine = operator.client.get("/api/commands?host=titan-02").json()["commands"][0]
    assert [i["host"] for i in mine["invocations"]] == ["titan-02"]
    for bad in ("state=done", "limit=0", "limit=201", "cursor=abc", f"cursor={2**63}"):
        response = operator.client.get(f"/api/commands?{bad}")
        assert response.status_code == 400 and response.json()["error"] == "invalid_filter", bad
    # A NUL anywhere in a URL is refused before any view (common.middleware), as JSON too.
    response = operator.client.get("/api/commands?host=a%00b")
    assert response.status_code == 400 and response.json()["error"] == "bad_request"
    assert second and first


def test_a_command_that_does_not_exist_is_a_404(operator):
    assert operator.client.get("/api/commands/999").status_code == 404
    assert operator.client.get(f"/api/commands/{2**64}").status_code == 404
    assert operator.cancel(999).status_code == 404


def test_the_catalogue_lists_each_action_with_its_json_schema(operator):
    catalogue = operator.client.get("/api/commands/actions").json()
    actions = {a["name"]: a for a in catalogue["actions"]}
    assert set(actions) == {"ping", "collect-now", "set-interval", "restart-agent", "shell"}
    interval = actions["set-interval"]["argsSchema"]
    # Inline, as a form reads it: properties at the top.
    assert interval["required"] == ["seconds"] and interval["additionalProperties"] is False
    assert interval["properties"]["seconds"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 3600,
        "description": "New collection interval, 1 to 3600 s.",
    }
    assert actions["shell"]["permissions"] == ["commands.add_command", "commands.run_shell"]
    assert actions["shell"]["requiresHostEnablement"] and not actions["ping"]["requiresHostEnablement"]
    assert catalogue["defaults"] == {
        "timeoutSeconds": 60,
        "deliveryTimeoutSeconds": 300,
        "maxConcurrency": 50,
        "maxErrors": 0,
    }


def test_a_session_user_sends_commands_with_a_csrf_token_like_any_form(django_user_model, agents):
    agents("titan-01")
    user = django_user_model.objects.create_user("carol", password="a-long-password-1")
    grant(user, "add_command")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    body = b'{"action": "ping", "targets": {"hosts": ["titan-01"]}}'
    assert browser.post("/api/commands", data=body, content_type="application/json").status_code == 403
    browser.get("/admin/login/")  # sets the CSRF cookie
    token = browser.cookies["csrftoken"].value
    created = browser.post("/api/commands", data=body, content_type="application/json", headers={"X-CSRFToken": token})
    assert created.status_code == 201 and created.json()["issuedBy"] == "carol"
    assert InvocationTransition.objects.count() == 1


@pytest.mark.parametrize(
    ("value", "status"), [(2**70, 400), (-(2**70), 400), (1.5e300, 400), (2**62, 200), (-0.25, 200), ("text", 200)]
)
def test_numbers_in_data_beyond_64_bits_are_refused_and_the_rest_kept_as_sent(operator, agents, value, status):
    agent = agents("titan-01")
    command = operator.send(action="ping").json()
    agent.get(PENDING)
    # The standard library writes integers of any size, as some agents will.
    body = json.dumps({"status": "succeeded", "exit_code": 0, "data": {"n": [value]}}).encode()
    response = agent.client.post(
        result_path(command["id"]), data=body, content_type="application/json", headers=agent.headers(body)
    )
    assert response.status_code == status, response.content
    if status == 200:
        assert operator.read(command["id"])["invocations"][0]["data"] == {"n": [value]}
    else:
        assert response.json()["error"] == "invalid_result"
