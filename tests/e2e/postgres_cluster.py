"""A throwaway PostgreSQL cluster of a test's own, to restart, crash, dump and restore.

The shared server the suite runs on is never stopped: a test that restarts
PostgreSQL gets a cluster in a temporary directory, on a free loopback port,
and removes it afterwards. PostgreSQL refuses to run as root, so as root the
cluster's programs run as the ``postgres`` user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import free_port


def postgres_bindir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` live: ``TWIN_PG_BINDIR``, ``pg_config``, Debian's layout, or the PATH."""
    candidates = [os.environ.get("TWIN_PG_BINDIR", "")]
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        candidates.append(subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout)
    # Newest major version first (Debian keeps each in /usr/lib/postgresql/<major>/bin).
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True)
    if initdb := shutil.which("initdb"):
        candidates.append(str(Path(initdb).resolve().parent))
    for candidate in candidates:
        bindir = Path(candidate.strip())
        if candidate.strip() and (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    return None


class PostgresCluster:
    """``initdb`` into a temporary directory, then ``pg_ctl`` start, restart (``fast`` or ``immediate``) and stop."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="twin-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "socket"
        self.log = self.root / "postgres.log"
        self._user = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
        self.socket_dir.mkdir()
        if self._user is not None:
            for path in (self.root, self.socket_dir):
                os.chown(path, self._user.pw_uid, self._user.pw_gid)

    def run(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """One of the cluster's programs (``initdb``, ``pg_ctl``, ``pg_dump``, ``psql``...), as its owner."""
        user = self._user

        def become_owner() -> None:
            if user is not None:
                os.setgid(user.pw_gid)
                os.setuid(user.pw_uid)

        env = {**os.environ, "PGHOST": "127.0.0.1", "PGPORT": str(self.port), "PGUSER": "postgres"}
        if user is not None:
            env["HOME"] = user.pw_dir
        out = subprocess.run(
            [str(self.bindir / program), *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=self.root,
            preexec_fn=become_owner,
            timeout=120,
        )
        if check and out.returncode != 0:
            raise RuntimeError(f"{program} {' '.join(args)} exited {out.returncode}:\n{out.stderr}")
        return out

    def init(self) -> None:
        # trust on loopback: the cluster lives for one test module and listens on 127.0.0.1 only.
        self.run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")

    def options(self) -> str:
        # fsync off: a crash of this cluster (-m immediate) still recovers from its WAL,
        # since the machine itself does not crash; only the test's speed is at stake.
        return f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60"

    def start(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", self.options(), "-w", "start")

    def restart(self, mode: str) -> None:
        """``fast``: every session is ended and the server shuts down cleanly; ``immediate``: a crash, then recovery."""
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", self.options(), "-m", mode, "-w", "restart")

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def createdb(self, name: str) -> str:
        self.run("createdb", name)
        return self.url(name)

    def url(self, name: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def sql(self, name: str, statement: str) -> str:
        """``statement``'s rows as psql prints them unaligned, one a line."""
        return self.run("psql", "-d", name, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", statement).stdout


@contextlib.contextmanager
def own_cluster(purpose: str) -> Iterator[PostgresCluster]:
    """A started cluster for a module's fixture, removed afterwards; a skip (under CI a failure) without one.

    ``TWIN_REQUIRE_PG_CLUSTER=1`` (set by CI) turns the skip into a failure:
    a drill skipped in CI would hide a broken one.
    """
    bindir = postgres_bindir()
    if bindir is None:
        reason = f"needs PostgreSQL's server programs (initdb, pg_ctl; TWIN_PG_BINDIR names their directory) {purpose}"
        if os.environ.get("TWIN_REQUIRE_PG_CLUSTER"):
            pytest.fail(reason)
        pytest.skip(reason)
    cluster = PostgresCluster(bindir)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.remove()
