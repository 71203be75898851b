"""The agent's tests: its HTTP over Django's test client, a live signed twin, the agent as a process."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from twin_agent.protocol import host_register
from twin_agent.spool import Spool
from twin_agent.state import Credential, credential_save
from twin_agent.transport import Reply

from tests.e2e.conftest import LiveServer, server_start, server_stop

ROOT = Path(__file__).resolve().parents[2]


class DjangoHttp:
    """The agent's ``Http``, carried by Django's test client: the real server's code, in this process.

    Protocol tests run against the real views this way, with settings
    overridden per test; the end-to-end tests use the real ``Http`` over TCP.
    """

    base_url = "http://testserver"

    def __init__(self, client: Client) -> None:
        self.client = client
        self.requests: list[tuple[str, str, dict[str, str]]] = []

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Reply:
        headers = dict(headers or {})
        self.requests.append((method, path, headers))
        content_type = headers.pop("Content-Type", "application/json")
        if method == "POST":
            response = self.client.post(path, data=body or b"", content_type=content_type, headers=headers)
        else:
            response = self.client.generic(method, path, headers=headers)
        return Reply(
            status=response.status_code,
            body=response.content,
            headers={name.lower(): value for name, value in response.items()},
        )

    def close(self) -> None:
        pass


@pytest.fixture(autouse=True)
def _agent_logger_restored() -> Iterator[None]:
    """``twin-agent run`` sets up its logger (own handler, no propagation); later tests need it as it was."""
    logger = logging.getLogger("twin_agent")
    saved = (logger.handlers[:], logger.propagate, logger.level)
    yield
    logger.handlers[:], logger.propagate, logger.level = saved


@pytest.fixture
def django_http(client: Client) -> DjangoHttp:
    return DjangoHttp(client)


@pytest.fixture
def enroll(django_http: DjangoHttp, enrollment_key: str) -> Callable[..., Credential]:
    """Register a host through the real registration view; returns its credential."""

    def enroll(hostname: str = "agent-01", **fields: Any) -> Credential:
        return host_register(
            http=django_http,  # type: ignore[arg-type]
            enrollment_key=enrollment_key,
            hostname=hostname,
            platform="Linux-x86_64",
            agent_version="0.1.0",
            **fields,
        )

    return enroll


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    spool = Spool(tmp_path / "spool.sqlite3", max_samples=1000)
    yield spool
    spool.close()


@pytest.fixture
def signed_twin(transactional_db, django_db_serialized_rollback, tmp_path, channel_prefix) -> Iterator[LiveServer]:
    """A live twin in production mode: every batch must be signed."""
    server = server_start(tmp_path, CHANNEL_LAYER_PREFIX=channel_prefix, TWIN_AGENT_AUTH="signed")
    yield server
    if server.process.poll() is None:
        server_stop(server)


@pytest.fixture
def channel_prefix() -> str:
    import uuid

    return f"twin-test-{uuid.uuid4().hex[:8]}"


def agent_enroll_cli(*, server: str, key: str, state_dir: Path, hostname: str) -> subprocess.CompletedProcess:
    """``twin-agent enroll`` as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "twin_agent", "enroll", "--server", server, "--enrollment-key", key,
         "--state-dir", str(state_dir), "--hostname", hostname],
        capture_output=True, text=True, timeout=30, cwd=ROOT,
    )  # fmt: skip


@dataclass
class AgentProcess:
    """``twin-agent run`` in a subprocess, its JSON log lines appended to one file across restarts."""

    state_dir: Path
    log: Path
    args: tuple[str, ...] = ()
    process: subprocess.Popen | None = None

    def start(self) -> AgentProcess:
        command = [
            sys.executable, "-m", "twin_agent", "run", "--state-dir", str(self.state_dir),
            "--log-format", "json", "--log-level", "debug", *self.args,
        ]  # fmt: skip
        with self.log.open("a") as sink:
            self.process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT)
        return self

    def lines(self) -> list[dict[str, Any]]:
        entries = []
        for line in self.log.read_text().splitlines():
            try:
                entries.append(json.loads(line))
            except ValueError:
                entries.append({"msg": line, "level": "raw"})
        return entries

    def collected(self) -> list[str]:
        return [e["timestamp"] for e in self.lines() if e.get("msg") == "sample collected"]

    def wait_collected(self, n: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while len(self.collected()) < n:
            assert self.process is not None and self.process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, f"fewer than {n} samples in {timeout} s:\n{self.log.read_text()}"
            time.sleep(0.1)

    def wait_log(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for entry in self.lines():
                if predicate(entry):
                    return entry
            assert time.monotonic() < deadline, f"no such log line in {timeout} s:\n{self.log.read_text()}"
            time.sleep(0.1)

    def terminate(self, timeout: float = 20) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def cleanup(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def agent_process(tmp_path: Path) -> Iterator[Callable[..., AgentProcess]]:
    made: list[AgentProcess] = []

    def make(state_dir: Path, *args: str) -> AgentProcess:
        agent = AgentProcess(state_dir=state_dir, log=tmp_path / f"agent-{len(made)}.log", args=args)
        made.append(agent)
        return agent

    yield make
    for agent in made:
        agent.cleanup()


def credential_write(state_dir: Path, registration: dict[str, Any], server: str) -> Credential:
    """Store a registration answer as ``twin-agent enroll`` would."""
    credential = Credential(
        server=server,
        hostname=registration["hostname"],
        key_id=registration["keyId"],
        signing_secret=registration["signingSecret"],
        heartbeat_seconds=float(registration["heartbeatIntervalSeconds"]),
        twin_id=registration["twinId"],
        enrolled_at="2026-01-01T00:00:00.000Z",
    )
    credential_save(state_dir=state_dir, credential=credential)
    return credential


os.environ.setdefault("PYTHONUNBUFFERED", "1")
