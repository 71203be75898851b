"""hosts.apps: the open-mode warning is the server's, not every management command's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WARNING = "TWIN_AGENT_AUTH=open: unsigned batches are accepted"


def _run(tmp_path: Path, *args: str) -> str:
    env = {
        **os.environ,
        "TWIN_AGENT_AUTH": "open",
        "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
        "TWIN_JOBS_ENABLED": "false",
    }
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def test_a_management_command_in_open_mode_prints_no_open_mode_warning(tmp_path):
    assert WARNING not in _run(tmp_path, "manage.py", "check")


def test_a_server_loading_the_app_in_open_mode_warns_once(tmp_path):
    assert _run(tmp_path, "-c", "import twinsite.asgi").count(WARNING) == 1
