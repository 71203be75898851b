"""The project's nginx configuration, rendered and run here as the nginx image would.

The image renders ``deploy/nginx/default.conf.template`` with envsubst into
``conf.d/`` and includes it in its own ``http`` block; here the same template is
rendered with the same substitution and included in a small main file that
keeps every path (pid, logs, temporary files) inside a test's directory.
``nginx_start`` runs it in front of two replicas: the topology tests and the
soak (``bench/soak.py``) share it.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "nginx" / "default.conf.template"
# What the nginx image's envsubst replaces: ${NAME} and $NAME of the variables it is given.
VARIABLE = re.compile(r"\$\{(TWIN_[A-Z0-9_]+)\}|\$(TWIN_[A-Z0-9_]+)")
MAX_BODY_BYTES = 65536  # small, so a body over the limit is cheap to send
STICKY_LINE = "    hash $binary_remote_addr consistent;\n"


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


def site_write(directory: Path, values: dict[str, str], *, worker_connections: int = 512) -> NginxSite:
    """Write the rendered site and a main file around it, everything under ``directory``.

    ``worker_connections`` counts both sides of each proxied request: a soak with hundreds
    of requests in flight and fifty websockets needs more than a test's 512.
    """
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
events {{ worker_connections {worker_connections}; }}
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


def port_wait(port: int, process: subprocess.Popen, log: Path, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited early:\n{log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port} after {seconds} s:\n{log.read_text(errors='replace')}")


def process_stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Replica(Protocol):
    """A twin process nginx passes requests to: a test's ``LiveServer`` or the bench's ``Server``."""

    url: str


@dataclass
class Proxy:
    url: str
    process: subprocess.Popen
    log: Path

    def lines(self) -> list[dict[str, Any]]:
        """nginx's access log: one JSON object per line (error-log lines are not JSON)."""
        return [orjson.loads(line) for line in self.log.read_text().splitlines() if line.startswith("{")]

    def line_wait(self, wanted: Callable[[dict[str, Any]], bool], seconds: float = 5) -> dict[str, Any]:
        """The first access-log line ``wanted`` accepts; nginx writes one when its request ends."""
        deadline = time.monotonic() + seconds
        while (line := next((x for x in self.lines() if wanted(x)), None)) is None:
            assert time.monotonic() < deadline, "no such line in nginx's access log"
            time.sleep(0.05)
        return line

    def worker_pids(self) -> list[int]:
        """nginx's master and its workers, for what they cost in CPU (bench/scaling.py)."""
        children = [
            int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _ppid(int(p.name)) == self.process.pid
        ]
        return [self.process.pid, *children]


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return -1


def nginx_start(
    directory: Path,
    replicas: Sequence[Replica],
    *,
    sticky: bool = True,
    max_body_bytes: int = MAX_BODY_BYTES,
    worker_connections: int = 512,
) -> Proxy:
    """The project's nginx on a free loopback port in front of two replicas; stop it with ``process_stop``.

    Given one replica, both of the template's upstream lines name it (nginx's cost alone).
    """
    port = free_port()
    static_parent = directory / "site"
    (static_parent / "static").mkdir(parents=True, exist_ok=True)
    (static_parent / "static" / "nginx-probe.txt").write_text("served by nginx\n")
    values = {
        "TWIN_NGINX_LISTEN": f"127.0.0.1:{port}",
        "TWIN_WEB_1": replicas[0].url.removeprefix("http://"),
        "TWIN_WEB_2": replicas[-1].url.removeprefix("http://"),
        "TWIN_STATIC_PARENT": str(static_parent),
        "TWIN_MAX_BODY_BYTES": str(max_body_bytes),
    }
    site = site_write(directory, values, worker_connections=worker_connections)
    if not sticky:
        text = (directory / "default.conf").read_text()
        assert STICKY_LINE in text
        (directory / "default.conf").write_text(text.replace(STICKY_LINE, ""))
    checked = config_test(site)
    assert checked.returncode == 0, checked.stderr
    log = directory / "nginx.log"
    # Append mode: nginx opens /dev/stdout anew for its access log, and a second
    # description of a file opened for writing would write over the first one's lines.
    process = subprocess.Popen(site.command("-g", "daemon off;"), stdout=log.open("a"), stderr=subprocess.STDOUT)
    port_wait(port, process, log)
    return Proxy(url=f"http://127.0.0.1:{port}", process=process, log=log)
