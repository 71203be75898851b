"""The backup drill of docs/operations.md: a twin with history, dumped, restored, serves the same.

The page's commands run as written, on a PostgreSQL cluster of this test's
own (its port for 5432, a temporary file for /tmp/twin.dump).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from hosts.credentials import signature_compute
from tests.conftest import sample_dict
from tests.e2e.conftest import ROOT, manage, server_start, server_stop
from tests.e2e.postgres_cluster import PostgresCluster, postgres_bindir
from tests.ops import drills

pytestmark = [pytest.mark.e2e]

OPERATIONS = (ROOT / "docs" / "operations.md").read_text()
DRILL_ENV = {"TWIN_ID": "twin-drill", "TWIN_AGENT_AUTH": "open", **drills.STATUS_ENV}


def sh_blocks(section: str) -> list[str]:
    """The ``sh`` code blocks of a section of docs/operations.md, in order."""
    text = OPERATIONS.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", text, re.S)


def run_as_documented(block: str, cluster: PostgresCluster, tmp_path: Path) -> None:
    """Each line of ``block`` in a shell, pointed at ``cluster`` instead of the default port."""
    script = (
        block.replace("-h 127.0.0.1", f"-h 127.0.0.1 -p {cluster.port}")
        .replace("127.0.0.1:5432", f"127.0.0.1:{cluster.port}")
        .replace("/tmp/twin.dump", str(tmp_path / "twin.dump"))
        .replace(".venv/bin/python", sys.executable)
    )
    # The cluster's own client programs first: pg_dump refuses a server newer than itself.
    env = {**os.environ, "PATH": f"{cluster.bindir}:{os.environ['PATH']}"}
    out = subprocess.run(["bash", "-euxc", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresCluster]:
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip("needs PostgreSQL's programs (initdb, pg_ctl, pg_dump; set TWIN_PG_BINDIR) for the backup drill")
    cluster = PostgresCluster(bindir)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


def test_a_dump_of_a_twin_with_history_restored_into_a_new_database_serves_the_same_twin(
    own_postgres: PostgresCluster, tmp_path, channel_prefix
):
    cluster = own_postgres
    source = cluster.createdb("twin_ops")
    manage(source, "migrate", "--noinput")
    enrollment = manage(source, "create_enrollment_key", "--name", "drill").strip()
    server = server_start(tmp_path, DATABASE_URL=source, CHANNEL_LAYER_PREFIX=channel_prefix, **DRILL_ENV)
    try:
        credential = drills.post_register(server.url, enrollment, drills.HOSTS[0])
        end = drills.history_post(server.url)
        manage(source, "run_jobs", "--job", "metrics.rollups")
        at = drills.history_settled(server.url)
        before = drills.twin_reads(server.url, end=end, at=at)
        counts = drills.row_counts(cluster, "twin_ops")
        # Taken while the twin runs, as the page says it may be.
        dump, restore = sh_blocks("Backup and restore (PostgreSQL)")
        run_as_documented(dump, cluster, tmp_path)
    finally:
        server_stop(server)
    assert counts["metrics_rollup5m"] > 0 and counts["metrics_rollup1h"] > 0, counts
    assert {e["to"] for e in before[f"{drills.HOSTS[0]} events"]} >= {"online", "stale", "offline"}

    run_as_documented(restore, cluster, tmp_path)
    # Again, over the database the first restore made: an operator's second try.
    run_as_documented(restore, cluster, tmp_path)

    assert drills.row_counts(cluster, "twin_ops_restore") == counts
    restored = server_start(
        tmp_path, DATABASE_URL=cluster.url("twin_ops_restore"), CHANNEL_LAYER_PREFIX=channel_prefix, **DRILL_ENV
    )
    try:
        after = drills.twin_reads(restored.url, end=end, at=at)
        assert after == before
        # The agent's credential survives: secrets are derived from the key, not stored.
        body = orjson.dumps(
            {"agent_session": "after-restore", "sequence": 1, "samples": [sample_dict(drills.HOSTS[0])]}
        )
        stamp = str(int(time.time()))
        headers = {
            "X-Twin-Key-Id": credential["keyId"],
            "X-Twin-Timestamp": stamp,
            "X-Twin-Signature": signature_compute(secret=credential["signingSecret"], timestamp=stamp, body=body),
        }
        assert drills.post(f"{restored.url}/api/metrics/batch", body, headers)["accepted"] == 1
    finally:
        server_stop(restored)
