"""The project's nginx configuration, rendered and run here as the nginx image would.

The image renders ``deploy/nginx/default.conf.template`` with envsubst into
``conf.d/`` and includes it in its own ``http`` block; here the same template is
rendered with the same substitution and included in a small main file that
keeps every path (pid, logs, temporary files) inside a test's directory.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "nginx" / "default.conf.template"
# What the nginx image's envsubst replaces: ${NAME} and $NAME of the variables it is given.
VARIABLE = re.compile(r"\$\{(TWIN_[A-Z0-9_]+)\}|\$(TWIN_[A-Z0-9_]+)")


def nginx_binary() -> str:
    """nginx's path, or a skip (a failure when CI says nginx must be there)."""
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    if found:
        return found
    if os.environ.get("TWIN_REQUIRE_NGINX"):
        pytest.fail("nginx is not installed, and TWIN_REQUIRE_NGINX says the nginx tests must run")
    pytest.skip("nginx is not installed (CI installs Debian's nginx; apt-get install nginx)")


def template_variables() -> set[str]:
    return {a or b for a, b in VARIABLE.findall(TEMPLATE.read_text())}


def template_render(values: dict[str, str]) -> str:
    """The template with its variables replaced, as envsubst does; every one must be given."""
    missing = template_variables() - values.keys()
    assert not missing, f"no value for {sorted(missing)}"
    return VARIABLE.sub(lambda m: values[m.group(1) or m.group(2)], TEMPLATE.read_text())


@dataclass
class NginxSite:
    directory: Path
    main: Path

    def command(self, *args: str) -> list[str]:
        return [nginx_binary(), "-p", str(self.directory), "-c", str(self.main), "-e", "stderr", *args]


def site_write(directory: Path, values: dict[str, str]) -> NginxSite:
    """Write the rendered site and a main file around it, everything under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (directory / "temp" / sub).mkdir(parents=True, exist_ok=True)
    site = directory / "default.conf"
    site.write_text(template_render(values))
    # As root, workers would run as nobody and could not read a test's private directory.
    user = "user root;\n" if os.geteuid() == 0 else ""
    main = directory / "nginx.conf"
    main.write_text(
        f"""{user}worker_processes 1;
pid {directory}/nginx.pid;
error_log stderr notice;
events {{ worker_connections 512; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    client_body_temp_path {directory}/temp/body;
    proxy_temp_path {directory}/temp/proxy;
    fastcgi_temp_path {directory}/temp/fastcgi;
    uwsgi_temp_path {directory}/temp/uwsgi;
    scgi_temp_path {directory}/temp/scgi;
    include {site};
}}
"""
    )
    return NginxSite(directory=directory, main=main)


def config_test(site: NginxSite) -> subprocess.CompletedProcess:
    """``nginx -t`` on the site: syntax, directives, and that every upstream resolves."""
    return subprocess.run(site.command("-t"), capture_output=True, text=True, timeout=30)
