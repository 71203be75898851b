"""The backup drill of docs/operations.md: a twin with history, dumped, restored, serves the same.

The page's commands run as written, on a PostgreSQL cluster of this test's
own (its port for 5432, a temporary file for /tmp/twin.dump).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import orjson
import pytest

from hosts.credentials import signature_compute
from tests.conftest import sample_dict
from tests.e2e.conftest import manage, server_start, server_stop
from tests.e2e.postgres_cluster import PostgresCluster, own_cluster
from tests.ops import drills

pytestmark = [pytest.mark.e2e]


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresCluster]:
    with own_cluster("for the backup drill") as cluster:
        yield cluster


def test_a_dump_of_a_twin_with_history_restored_into_a_new_database_serves_the_same_twin(
    own_postgres: PostgresCluster, tmp_path, channel_prefix
):
    cluster = own_postgres
    source = cluster.createdb("twin_ops")
    manage(source, "migrate", "--noinput")
    enrollment = manage(source, "create_enrollment_key", "--name", "drill").strip()
    server = server_start(tmp_path, DATABASE_URL=source, CHANNEL_LAYER_PREFIX=channel_prefix, **drills.DRILL_ENV)
    try:
        credential = drills.post_register(server.url, enrollment, drills.HOSTS[0])
        end = drills.history_post(server.url)
        manage(source, "run_jobs", "--job", "metrics.rollups")
        at = drills.history_settled(server.url)
        before = drills.twin_reads(server.url, end=end, at=at)
        counts = drills.row_counts(cluster, "twin_ops")
        # Taken while the twin runs, as the page says it may be.
        dump, restore = drills.sh_blocks("Backup and restore (PostgreSQL)")
        drills.run_as_documented(dump, cluster, tmp_path)
    finally:
        server_stop(server)
    drills.history_shown(before)

    drills.run_as_documented(restore, cluster, tmp_path)
    # Again, over the database the first restore made: an operator's second try.
    drills.run_as_documented(restore, cluster, tmp_path)

    assert drills.row_counts(cluster, "twin_ops_restore") == counts
    restored = server_start(
        tmp_path, DATABASE_URL=cluster.url("twin_ops_restore"), CHANNEL_LAYER_PREFIX=channel_prefix, **drills.DRILL_ENV
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
