"""Production settings pass Django's deployment checklist; secrets are never a published value."""

from __future__ import annotations

import os
import secrets
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

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


PRINT_KEYS = ("shell", "-c", "from django.conf import settings as s; print(s.SECRET_KEY, s.TWIN_CREDENTIAL_KEY)")


def test_without_a_secret_key_the_installation_makes_its_own_readable_by_its_owner_only(tmp_path):
    key_file = tmp_path / "var" / "secret_key"
    first = manage(*PRINT_KEYS, **{**PRODUCTION, "SECRET_KEY": "", "TWIN_SECRET_KEY_FILE": str(key_file)})
    assert first.returncode == 0, first.stderr
    secret_key, credential_key = first.stdout.splitlines()[-1].split()
    assert secret_key == credential_key == key_file.read_text().strip()
    assert len(secret_key) >= 50
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    again = manage(*PRINT_KEYS, **{**PRODUCTION, "SECRET_KEY": "", "TWIN_SECRET_KEY_FILE": str(key_file)})
    assert again.stdout.splitlines()[-1].split()[0] == secret_key


def test_processes_starting_at_once_agree_on_the_installations_key(tmp_path):
    key_file = tmp_path / "secret_key"
    env = {**PRODUCTION, "SECRET_KEY": "", "TWIN_SECRET_KEY_FILE": str(key_file)}
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda _: manage(*PRINT_KEYS, **env), range(6)))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    assert len({r.stdout.splitlines()[-1].split()[0] for r in results}) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]  # no candidate left behind


def python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )


def test_reading_the_settings_never_makes_the_key_and_says_where_it_comes_from(tmp_path):
    key_file = tmp_path / "secret_key"
    env = {**PRODUCTION, "SECRET_KEY": "", "TWIN_SECRET_KEY_FILE": str(key_file)}
    result = python(
        "from django.conf import settings; settings.SECRET_KEY", DJANGO_SETTINGS_MODULE="twinsite.settings", **env
    )
    assert result.returncode != 0
    assert f"{key_file} does not exist" in result.stderr
    assert not key_file.exists()


def test_the_servers_entry_point_makes_the_installations_key_as_manage_py_does(tmp_path):
    key_file = tmp_path / "secret_key"
    env = {**PRODUCTION, "SECRET_KEY": "", "TWIN_SECRET_KEY_FILE": str(key_file), "TWIN_JOBS_ENABLED": "false"}
    served = python("import twinsite.asgi; from django.conf import settings; print(settings.SECRET_KEY)", **env)
    assert served.returncode == 0, served.stderr
    assert served.stdout.split()[-1] == key_file.read_text().strip()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    managed = manage(*PRINT_KEYS, **env)
    assert managed.stdout.splitlines()[-1].split()[0] == key_file.read_text().strip()


def test_a_key_file_readable_by_others_is_refused(tmp_path):
    key_file = tmp_path / "secret_key"
    key_file.write_text(secrets.token_urlsafe(64))
    key_file.chmod(0o644)
    result = manage("check", **{**PRODUCTION, "SECRET_KEY": "", "TWIN_SECRET_KEY_FILE": str(key_file)})
    assert result.returncode != 0
    assert "readable by others" in result.stderr


PUBLISHED_OR_WEAK = [
    "change-me-in-production",
    "insecure-dev-only-key-set-SECRET_KEY-in-production",
    "insecure-test-only-key",
    "django-insecure-" + "x" * 50,
    "a-short-secret",
    "ab" * 40,
]


@pytest.mark.parametrize("variable", ["SECRET_KEY", "TWIN_CREDENTIAL_KEY"])
@pytest.mark.parametrize("key", PUBLISHED_OR_WEAK)
def test_a_published_short_or_repetitive_key_stops_a_production_start(variable, key):
    result = manage("check", **{**PRODUCTION, variable: key})
    assert result.returncode != 0
    assert f"{variable} is" in result.stderr and "Only DEBUG accepts it" in result.stderr


def test_debug_accepts_any_key():
    result = manage("check", **{**PRODUCTION, "DEBUG": "true", "SECRET_KEY": "change-me-in-production"})
    assert result.returncode == 0, result.stderr


def test_docker_compose_requires_a_secret_key_in_every_service_of_the_twin():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    twins = [name for name, service in compose["services"].items() if "SECRET_KEY" in service.get("environment", {})]
    assert {"migrate", "web-1", "web-2"} <= set(twins)
    for name in twins:
        assert compose["services"][name]["environment"]["SECRET_KEY"].startswith("${SECRET_KEY:?"), name


def test_a_malformed_setting_fails_loudly():
    result = manage("check", **{**PRODUCTION, "TWIN_STALE_AFTER_SECONDS": "soon"})
    assert result.returncode != 0
    assert "TWIN_STALE_AFTER_SECONDS='soon' is not a valid float" in result.stderr


def test_open_agent_mode_is_announced_by_the_server_not_by_every_management_command():
    """The warning belongs to a server's start (twinsite.asgi; tests/hosts/test_apps.py), not to `make manage`."""
    result = manage("check", **{**PRODUCTION, "TWIN_AGENT_AUTH": "open"})
    assert result.returncode == 0
    assert "TWIN_AGENT_AUTH=open" not in result.stderr


def test_a_boolean_that_is_not_one_fails_loudly():
    result = manage("check", **{**PRODUCTION, "TWIN_PUBLIC_READ": "maybe"})
    assert result.returncode != 0
    assert "TWIN_PUBLIC_READ='maybe' is not a boolean" in result.stderr
