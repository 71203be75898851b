"""The production files, checked without a Docker engine: compose against its schema, the
Dockerfile linted, nginx's configuration tested by nginx itself."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from django.conf import settings

from tests.ops.nginx import ROOT, config_test, nginx_binary, site_write, template_variables

COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
SCHEMA = ROOT / "deploy" / "compose-spec.json"
REQUIRED = {"SECRET_KEY": "s" * 50, "POSTGRES_PASSWORD": "p" * 24}

# Compose's interpolation: $$ is a dollar; ${NAME}, ${NAME:-default}, ${NAME-default},
# ${NAME:?error}, ${NAME?error}; $NAME.
INTERPOLATION = re.compile(
    r"\$(?:"
    r"(\$)"  # $$
    r"|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])((?:[^{}]|\{[^{}]*\})*))?\}"  # ${NAME...}
    r"|([A-Za-z_][A-Za-z0-9_]*))"  # $NAME
)


class MissingVariable(Exception):
    pass


def interpolate(text: str, env: dict[str, str]) -> str:
    """The compose file as `docker compose config` would see it under ``env``."""

    def replace(match: re.Match[str]) -> str:
        dollar, name, operator, argument, bare = match.groups()
        if dollar:
            return "$"
        if bare:
            return env.get(bare, "")
        value = env.get(name)
        unset_or_empty = value is None or ((operator or "").startswith(":") and value == "")
        if operator in (":-", "-"):
            return argument if unset_or_empty else value
        if operator in (":?", "?"):
            if unset_or_empty:
                raise MissingVariable(f"required variable {name} is missing a value: {argument}")
            return value
        return value or ""

    return INTERPOLATION.sub(replace, text)


def compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    return yaml.safe_load(interpolate(COMPOSE.read_text(), REQUIRED if env is None else env))


def schema_errors(document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(document)]


# --- compose ------------------------------------------------------------------------


def test_the_compose_file_follows_the_compose_specification():
    assert schema_errors(yaml.safe_load(COMPOSE.read_text())) == []
    assert schema_errors(compose()) == []


def test_the_schema_check_would_catch_a_mistake():
    broken = compose()
    broken["services"]["web-1"]["helthcheck"] = broken["services"]["web-1"].pop("healthcheck")
    assert any("helthcheck" in error for error in schema_errors(broken))


@pytest.mark.parametrize("variable", sorted(REQUIRED))
def test_compose_refuses_to_start_without_its_secrets(variable):
    with pytest.raises(MissingVariable, match=variable):
        compose({k: v for k, v in REQUIRED.items() if k != variable})


def test_no_file_ships_a_default_secret():
    for path in (COMPOSE, DOCKERFILE, ROOT / "deploy" / "nginx" / "default.conf.template"):
        text = path.read_text().lower()
        assert "change-me" not in text and "changeme" not in text, path
    web = compose()["services"]["web-1"]["environment"]
    assert web["SECRET_KEY"] == REQUIRED["SECRET_KEY"]
    assert REQUIRED["POSTGRES_PASSWORD"] in web["DATABASE_URL"]


def test_migrations_run_once_before_two_replicas_that_report_ready_on_readyz():
    services = compose()["services"]
    migrate = services["migrate"]
    assert "migrate --noinput" in " ".join(migrate["command"])
    assert migrate["restart"] == "no"
    for name in ("web-1", "web-2"):
        web = services[name]
        assert web["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert web["depends_on"]["postgres"] == {"condition": "service_healthy"}
        assert "/readyz" in " ".join(web["healthcheck"]["test"])
        assert "command" not in web  # the image's own: daphne, no migration
    assert "migrate" not in DOCKERFILE.read_text().split("CMD", 1)[-1].split("\n")[0]
    assert services["nginx"]["depends_on"] == {
        "web-1": {"condition": "service_healthy"},
        "web-2": {"condition": "service_healthy"},
    }
    assert services["postgres"]["healthcheck"]["test"][0] == "CMD-SHELL"
    assert any(volume.endswith(":/var/lib/postgresql/data") for volume in services["postgres"]["volumes"])


def test_the_simulator_starts_only_with_its_profile_and_posts_through_nginx():
    simulator = compose()["services"]["simulator"]
    assert simulator["profiles"] == ["simulator"]
    assert "simulate_fleet --server http://nginx " in " ".join(simulator["command"])
    assert simulator["build"]["args"] == {"WITH_AGENT": "true"}  # the agent, in its image only
    assert simulator["image"] != compose()["services"]["web-1"]["image"]


def test_every_name_the_services_reach_a_replica_by_is_an_allowed_host():
    allowed = compose()["services"]["web-1"]["environment"]["ALLOWED_HOSTS"].split(",")
    # health checks (127.0.0.1), the simulator (nginx passes its Host on), a Prometheus per replica
    assert {"127.0.0.1", "nginx", "web-1", "web-2"} <= set(allowed)


def test_nginx_gets_every_variable_of_its_template_and_the_apps_body_limit():
    services = compose()["services"]
    nginx_env = services["nginx"]["environment"]
    assert template_variables() <= nginx_env.keys()
    assert nginx_env["TWIN_MAX_BODY_BYTES"] == services["web-1"]["environment"]["TWIN_MAX_BODY_BYTES"]
    assert nginx_env["TWIN_MAX_BODY_BYTES"] == settings.TWIN_MAX_BODY_BYTES  # the defaults agree
    changed = compose({**REQUIRED, "TWIN_MAX_BODY_BYTES": "1048576"})["services"]
    assert changed["nginx"]["environment"]["TWIN_MAX_BODY_BYTES"] == 1048576
    assert changed["web-2"]["environment"]["TWIN_MAX_BODY_BYTES"] == 1048576


def test_nginx_runs_the_template_the_tests_render():
    mounts = compose()["services"]["nginx"]["volumes"]
    assert "./deploy/nginx/default.conf.template:/etc/nginx/templates/default.conf.template:ro" in mounts


def test_every_image_is_pinned():
    for name, service in compose()["services"].items():
        image = service["image"]
        if "build" in service:
            continue  # our own image, built from the Dockerfile below
        assert re.fullmatch(r"[a-z0-9./-]+:\d+\.\d+(\.\d+)?[a-z0-9.-]*(@sha256:[0-9a-f]{64})?", image), (name, image)
    base = re.search(r"^FROM (\S+)", DOCKERFILE.read_text(), re.MULTILINE).group(1)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", base), base


# --- Dockerfile ------------------------------------------------------------------------


def test_the_image_runs_as_a_non_root_user():
    users = re.findall(r"^USER (\S+)", DOCKERFILE.read_text(), re.MULTILINE)
    assert users and users[-1].split(":")[0] not in {"root", "0"}


def test_the_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# --- nginx ---------------------------------------------------------------------------


def loopback_values(directory: Path) -> dict[str, str]:
    return {
        "TWIN_NGINX_LISTEN": "127.0.0.1:18080",
        "TWIN_WEB_1": "127.0.0.1:18001",
        "TWIN_WEB_2": "127.0.0.1:18002",
        "TWIN_STATIC_PARENT": str(directory),
        "TWIN_MAX_BODY_BYTES": str(settings.TWIN_MAX_BODY_BYTES),
    }


def test_nginx_accepts_the_configuration_rendered_for_loopback(tmp_path):
    nginx_binary()
    result = config_test(site_write(tmp_path, loopback_values(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_nginx_accepts_the_configuration_with_the_compose_files_own_values(tmp_path):
    """The replicas' names resolve only inside compose's network: a private /etc/hosts, in a
    mount namespace of this test's own, stands in for Docker's DNS."""
    nginx_binary()
    unshare = shutil.which("unshare")
    if unshare is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare to give nginx a private /etc/hosts naming web-1 and web-2")
    values = compose()["services"]["nginx"]["environment"]
    site = site_write(tmp_path, {name: str(values[name]) for name in template_variables()})
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n127.0.0.1 web-1\n127.0.0.1 web-2\n")
    command = " ".join(site.command("-t"))
    result = subprocess.run(
        [unshare, "--mount", "sh", "-c", f"mount --bind {hosts} /etc/hosts && {command}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if "mount" in result.stderr and result.returncode != 0 and "nginx" not in result.stderr:
        pytest.skip(f"no private mount namespace here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
