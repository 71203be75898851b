"""One depth limit for every client value: at every endpoint that takes JSON, at the limit it is served; one
level more is a 400 naming the field, nothing stored. A stored value at the limit is encoded again everywhere.

Before, a command result whose ``data`` nested 300 deep was stored and every answer carrying it was a 500
(orjson encodes at most 254 levels).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client
from django.urls import reverse

from commands.models import Command, Invocation
from commands.selectors import command_update
from common.jsondepth import JSON_DEPTH_MAX
from hosts.models import Host
from metrics.models import BatchReceipt, Sample
from tests.commands.conftest import Operator, grant, result_path
from tests.conftest import SigningAgent, sample_dict
from twin.live.transport import MALFORMED_EVENT, TwinPacket
from twin.socketio_json import OrjsonForSocketIO

pytestmark = [pytest.mark.django_db]


def deep(levels: int) -> Any:
    """A value of ``levels`` nested arrays and objects (0: a number)."""
    value: Any = 1
    for n in range(levels):
        value = [value] if n % 2 else {"k": value}
    return value


@dataclass
class World:
    client: Client
    operator: Operator
    agent: SigningAgent
    command_id: int


@pytest.fixture
def world(client, django_user_model, make_agent, settings) -> World:
    settings.TWIN_AGENT_AUTH = "signed"
    agent = make_agent("titan-01")
    user = django_user_model.objects.create_superuser("alice", password="a-long-password-1")
    grant(user, "add_command", "view_command")
    operator = Operator(user)
    created = operator.send(action="ping")
    assert created.status_code == 201, created.content
    assert len(agent.get("/api/commands/pending?wait=0").json()["invocations"]) == 1  # dispatched: it may report
    return World(client=client, operator=operator, agent=agent, command_id=created.json()["id"])


def _stored() -> tuple:
    """Everything a client's JSON could have left behind."""
    return (
        Sample.objects.count(),
        BatchReceipt.objects.count(),
        Host.objects.count(),
        Command.objects.count(),
        list(Invocation.objects.values_list("state", "data")),
    )


@dataclass(frozen=True)
class Endpoint:
    """One way a client's JSON arrives: ``send(world, value)`` puts ``value`` ``around`` levels deep in the body."""

    around: int  # arrays and objects enclosing the value in the body, the body itself included
    field: str
    send: Callable[[World, Any], Any]


def _batch_sample(world: World, value: Any):
    return world.agent.post([sample_dict("titan-01", extra=value)])


def _batch_envelope(world: World, value: Any):
    return world.agent.post([sample_dict("titan-01")], extra=value)


def _registration(world: World, value: Any):
    body = orjson.dumps({"hostname": "new-01", "platform": "Linux", "agent_version": "1", "facts": value})
    from hosts.services import enrollment_key_create

    key = enrollment_key_create(name="depth")[1]
    return world.client.post(
        "/api/hosts/register", data=body, content_type="application/json", headers={"Authorization": f"Bearer {key}"}
    )


def _command(world: World, value: Any):
    return world.operator.send(action="ping", args={"x": value})


def _result(world: World, value: Any):
    return world.agent.post_json(result_path(world.command_id), {"status": "succeeded", "data": {"x": value}})


ENDPOINTS = {
    "metrics-batch-sample": Endpoint(3, "$.samples", _batch_sample),
    "metrics-batch-envelope": Endpoint(1, "$.extra", _batch_envelope),
    "hosts-register": Endpoint(1, "$.facts", _registration),
    "commands-create": Endpoint(2, "$.args", _command),
    "commands-result": Endpoint(2, "$.data", _result),
}


@pytest.mark.parametrize("name", ENDPOINTS)
def test_json_just_at_the_limit_is_not_refused_for_its_depth(world: World, name: str):
    endpoint = ENDPOINTS[name]
    response = endpoint.send(world, deep(JSON_DEPTH_MAX - endpoint.around))
    assert response.status_code < 500, response.content
    if name in ("metrics-batch-sample", "metrics-batch-envelope", "commands-result"):
        assert response.status_code in (200, 202), response.content  # stored
    if response.status_code >= 400:  # refused for its shape (an unknown field, args a ping does not take)
        assert response.json()["error"] != "json_too_deep", response.content


@pytest.mark.parametrize("name", ENDPOINTS)
def test_json_one_level_beyond_the_limit_is_a_400_naming_the_field_and_nothing_is_stored(world: World, name: str):
    endpoint = ENDPOINTS[name]
    before = _stored()
    response = endpoint.send(world, deep(JSON_DEPTH_MAX - endpoint.around + 1))
    assert response.status_code == 400, response.content
    error = response.json()
    assert (error["error"], error["field"], error["maxDepth"]) == ("json_too_deep", endpoint.field, JSON_DEPTH_MAX)
    assert endpoint.field.removeprefix("$.") in error["detail"]
    assert _stored() == before


@pytest.mark.parametrize("name", ENDPOINTS)
def test_json_nested_near_orjsons_own_limit_is_the_same_400(world: World, name: str):
    endpoint = ENDPOINTS[name]
    # The result nested 300 deep; the test's own client (orjson) encodes at most 254.
    response = endpoint.send(world, deep(250))
    assert (response.status_code, response.json()["error"]) == (400, "json_too_deep")


def test_a_result_stored_at_the_limit_is_encoded_again_by_every_reader(world: World, admin_client):
    reported = _result(world, deep(JSON_DEPTH_MAX - 2))
    assert reported.status_code == 200, reported.content
    invocation = Invocation.objects.select_related("command").get()
    assert invocation.data == {"x": deep(JSON_DEPTH_MAX - 2)}
    # The REST documents: one command, and the list.
    assert world.operator.read(world.command_id)["invocations"][0]["data"] == invocation.data
    assert world.operator.client.get("/api/commands").status_code == 200
    # The admin's pages of the command and of the invocation.
    for page in (
        reverse("admin:commands_command_change", args=[world.command_id]),
        reverse("admin:commands_invocation_change", args=[invocation.pk]),
        reverse("admin:commands_invocation_changelist"),
    ):
        assert admin_client.get(page).status_code == 200, page
    # The live side's command-update, as python-socketio encodes it.
    update = command_update(invocation, at=invocation.finished_at or invocation.queued_at)
    encoded = OrjsonForSocketIO.dumps(["command-update", {"type": "command-update", **update}])
    assert orjson.loads(encoded)[1]["result"]["data"] == invocation.data


def _send_command_form(admin_client: Client, value_text: str):
    hosts = list(Host.objects.filter(hostname="titan-01").values_list("pk", flat=True))
    form = {"command_action": "ping", "args": value_text, "timeout_seconds": "60"}
    form |= {"delivery_timeout_seconds": "300", "max_concurrency": "50", "max_errors": "0", "apply": "1"}
    return admin_client.post(
        reverse("admin:hosts_host_changelist"), {"action": "send_command", ACTION_CHECKBOX_NAME: hosts, **form}
    )


@pytest.mark.parametrize("levels", [300, 1200])
def test_the_admins_args_field_refuses_json_beyond_the_limit_on_the_field(world: World, admin_client, levels):
    before = _stored()
    # Past 1,000 levels Django's field raised RecursionError in json.loads.
    response = _send_command_form(admin_client, '{"x": ' + "[" * levels + "]" * levels + "}")
    assert response.status_code == 200
    assert f"deeper than {JSON_DEPTH_MAX} levels".encode() in response.content
    assert _stored() == before


def test_the_admins_args_field_takes_json_at_the_limit_to_the_commands_own_checks(world: World, admin_client):
    before = _stored()
    response = _send_command_form(admin_client, orjson.dumps({"x": deep(JSON_DEPTH_MAX - 1)}).decode())
    assert response.status_code == 200
    assert b"deeper than" not in response.content and b"invalid_args" in response.content  # ping takes no x
    assert _stored() == before


@pytest.mark.parametrize(("levels", "malformed"), [(JSON_DEPTH_MAX - 1, False), (JSON_DEPTH_MAX, True)])
def test_a_socketio_event_beyond_the_limit_is_a_malformed_packet(monkeypatch, levels: int, malformed: bool):
    # As twin.live's server does when it is made (python-socketio's json= sets it on its packet class).
    monkeypatch.setattr(TwinPacket, "json", OrjsonForSocketIO)
    # 2["subscribe", value]: the packet's list is the first level.
    packet = TwinPacket(encoded_packet="2/digital-twin," + orjson.dumps(["subscribe", deep(levels)]).decode())
    assert (packet.data[0] == MALFORMED_EVENT) is malformed
