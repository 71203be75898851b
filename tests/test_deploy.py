"""Production settings pass Django's deployment checklist."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "twin.example.com",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
    "TWIN_AGENT_AUTH": "signed",
    "TWIN_PUBLIC_READ": "false",
}


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_under_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_a_production_start_without_a_secret_key_fails_loudly():
    result = manage("check", **{**PRODUCTION, "SECRET_KEY": ""})
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_a_malformed_setting_fails_loudly():
    result = manage("check", **{**PRODUCTION, "TWIN_STALE_AFTER_SECONDS": "soon"})
    assert result.returncode != 0
    assert "TWIN_STALE_AFTER_SECONDS='soon' is not a valid float" in result.stderr


def test_open_agent_mode_is_announced_at_start():
    result = manage("check", **{**PRODUCTION, "TWIN_AGENT_AUTH": "open"})
    assert result.returncode == 0
    assert "TWIN_AGENT_AUTH=open" in result.stderr


def test_a_boolean_that_is_not_one_fails_loudly():
    result = manage("check", **{**PRODUCTION, "TWIN_PUBLIC_READ": "maybe"})
    assert result.returncode != 0
    assert "TWIN_PUBLIC_READ='maybe' is not a boolean" in result.stderr
