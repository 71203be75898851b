"""A real daphne server in a subprocess, on a free port, pointed at the test database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_database_url() -> str:
    """The URL of the database this test run created (``test_...``), for a child process."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = quote(db["USER"] or "")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def server_start(tmp_path: Path, *, port: int | None = None, root: Path = ROOT, **env_overrides: str) -> LiveServer:
    """Start the twin as ``make run`` does (``python -m twinsite.serve``) and wait until it answers.

    ``port`` starts it on a port chosen beforehand: where a stopped one listened (agents keep their
    server's URL), or one a browser test names in the server's settings. ``root`` is the source tree
    to run: another release's, checked out apart, for an upgrade drill.
    """
    port = port or free_port()
    env = {
        **os.environ,
        "DATABASE_URL": child_database_url(),
        "DEBUG": "false",
        # One deployment: sessions and derived agent secrets must agree across processes.
        "SECRET_KEY": settings.SECRET_KEY,
        "TWIN_CREDENTIAL_KEY": settings.TWIN_CREDENTIAL_KEY,
        "TWIN_REFRESH_SECONDS": "1",
        "TWIN_AGENT_AUTH": "open",
        "TWIN_PUBLIC_READ": "true",
        **env_overrides,
    }
    log = tmp_path / f"daphne-{port}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "twinsite.serve", "-b", "127.0.0.1", "-p", str(port)],
        cwd=root,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    server = LiveServer(url=f"http://127.0.0.1:{port}", process=process, log=log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"daphne exited early:\n{server.output()}")
        try:
            with urllib.request.urlopen(f"{server.url}/api/health", timeout=2) as response:
                if response.status == 200:
                    return server
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"daphne did not answer in 30 s:\n{server.output()}")


def manage(database_url: str, *args: str, root: Path = ROOT) -> str:
    """``manage.py <args>`` of the tree at ``root`` against ``database_url``, as an operator runs it; its stdout."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": settings.SECRET_KEY,
        "TWIN_CREDENTIAL_KEY": settings.TWIN_CREDENTIAL_KEY,
        # The tree's own code, never this checkout's, whatever the test run's path.
        "PYTHONPATH": str(root),
    }
    out = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=root, env=env, capture_output=True, text=True, timeout=180
    )
    assert out.returncode == 0, f"manage.py {' '.join(args)} exited {out.returncode}:\n{out.stderr}"
    return out.stdout


def server_stop(server: LiveServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture
def channel_prefix() -> str:
    """A Redis key prefix of this test's own, so runs sharing a Redis never hear each other."""
    return f"twin-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def live_twin(transactional_db, django_db_serialized_rollback, tmp_path, channel_prefix) -> Iterator[LiveServer]:
    server = server_start(tmp_path, CHANNEL_LAYER_PREFIX=channel_prefix)
    yield server
    server_stop(server)
