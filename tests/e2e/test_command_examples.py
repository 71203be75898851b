"""The command lifecycle's examples in docs/api.md work as written, against a live server."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import orjson
import pytest
from rest_framework.authtoken.models import Token

from commands.models import Invocation
from tests.commands.conftest import grant
from tests.e2e.conftest import LiveServer, server_start, server_stop
from tests.e2e.test_api_examples import code_block_after, registered

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def signed_twin(transactional_db, django_db_serialized_rollback, tmp_path, channel_prefix) -> Iterator[LiveServer]:
    server = server_start(tmp_path, CHANNEL_LAYER_PREFIX=channel_prefix, TWIN_AGENT_AUTH="signed")
    yield server
    server_stop(server)


def test_the_operators_curl_sends_a_command_and_the_agents_python_poll_receives_it(signed_twin, django_user_model):
    credential = registered(signed_twin)
    user = django_user_model.objects.create_user("alice", password="a-long-password-1")
    grant(user, "add_command")
    token = Token.objects.create(user=user).key

    script = code_block_after("### An agent's long poll in a few lines of Python", "sh")
    script = script.replace("TOKEN=…", f"TOKEN={token}").replace("http://127.0.0.1:8000", signed_twin.url)
    for _ in range(2):  # the same Idempotency-Key twice: one command
        out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        command = orjson.loads(out.stdout)
        assert (command["action"], command["state"]) == ("ping", "pending"), out.stdout
    assert Invocation.objects.count() == 1

    code = code_block_after("### An agent's long poll in a few lines of Python", "python")
    code = code.replace(
        'key_id, secret = "tak_…", "…"', f'key_id, secret = "{credential["keyId"]}", "{credential["signingSecret"]}"'
    )
    code = code.replace("http://127.0.0.1:8000", signed_twin.url)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert [i["commandId"] for i in orjson.loads(out.stdout)["invocations"]] == [command["id"]]
    assert Invocation.objects.get().state == "dispatched"
