"""The signed-request examples in docs/api.md work as written, against a live server."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from hosts.services import enrollment_key_create
from metrics.models import Sample
from tests.e2e.conftest import LiveServer, server_start, server_stop

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

DOC = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()


def code_block_after(heading: str, language: str) -> str:
    section = DOC.split(heading, 1)[1]
    return re.search(rf"```{language}\n(.*?)```", section, re.S).group(1)


@pytest.fixture
def signed_twin(transactional_db, django_db_serialized_rollback, tmp_path, channel_prefix) -> Iterator[LiveServer]:
    server = server_start(tmp_path, CHANNEL_LAYER_PREFIX=channel_prefix, TWIN_AGENT_AUTH="signed")
    yield server
    server_stop(server)


def registered(server: LiveServer) -> dict:
    _, key = enrollment_key_create(name="docs")
    out = subprocess.run(
        [
            "curl", "-s", f"{server.url}/api/hosts/register", "-H", "Content-Type: application/json",
            "-H", f"Authorization: Bearer {key}",
            "--data", '{"hostname": "titan-01", "platform": "Linux-x86_64", "agent_version": "0.1.0"}',
        ],
        capture_output=True, check=True, text=True,
    )  # fmt: skip
    return orjson.loads(out.stdout)


def test_the_python_example_signs_a_batch_the_server_accepts(signed_twin: LiveServer):
    credential = registered(signed_twin)
    code = code_block_after("### A signed request in a few lines of Python", "python")
    code = code.replace(
        'key_id, secret = "tak_…", "…"', f'key_id, secret = "{credential["keyId"]}", "{credential["signingSecret"]}"'
    )
    code = code.replace("http://127.0.0.1:8000", signed_twin.url)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert orjson.loads(out.stdout)["accepted"] == 1
    assert Sample.objects.filter(host__hostname="titan-01").count() == 1


def test_the_openssl_example_signs_a_batch_the_server_accepts(signed_twin: LiveServer):
    credential = registered(signed_twin)
    script = code_block_after("### The same with openssl and curl", "sh")
    script = script.replace(
        "KEY_ID=tak_…; SECRET=…", f"KEY_ID={credential['keyId']}; SECRET={credential['signingSecret']}"
    )
    script = script.replace("http://127.0.0.1:8000", signed_twin.url)
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert orjson.loads(out.stdout)["accepted"] == 1, out.stdout
