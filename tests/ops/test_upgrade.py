"""The upgrade drill of docs/operations.md: a database the previous release made, with data, migrates to this one.

The previous release's tree is taken from the repository's history with
``git archive``, migrates a new database and serves a twin with history through
its own API; then this release's ``migrate`` runs as the page says, and this
release serves the same twin.
"""

from __future__ import annotations

import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from hosts.credentials import signature_compute
from tests.conftest import sample_dict
from tests.e2e.conftest import ROOT, manage, server_start, server_stop
from tests.e2e.postgres_cluster import PostgresCluster, own_cluster
from tests.ops import drills

pytestmark = [pytest.mark.e2e]

# The previous release: the last commit before alerts, the facility, the fabric and
# power joined the schema. Its migration leaves, which this release's migrations follow:
PREVIOUS_RELEASE = "aa994d7bfdd8e19670e2618d443697740d6af2eb"
PREVIOUS_LEAVES = {
    "commands": "0001_initial",
    "hosts": "0004_text_rules",
    "jobs": "0001_initial",
    "metrics": "0005_history",
    "twin": "0001_status_history",
}


def previous_release_tree(into: Path) -> Path:
    """The previous release's files (``git archive``), or a skip when this clone lacks its history."""
    known = subprocess.run(
        ["git", "-C", str(ROOT), "cat-file", "-e", f"{PREVIOUS_RELEASE}^{{commit}}"], capture_output=True
    )
    if known.returncode != 0:
        pytest.skip(f"the previous release ({PREVIOUS_RELEASE[:7]}) is not in this clone: a shallow one? Fetch it")
    archive = into / "previous.tar"
    subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", "-o", str(archive), PREVIOUS_RELEASE], check=True
    )
    tree = into / "previous"
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresCluster]:
    with own_cluster("for the upgrade drill") as cluster:
        yield cluster


def applied_leaves(cluster: PostgresCluster, database: str) -> dict[str, str]:
    rows = cluster.sql(database, "select app, max(name) from django_migrations group by app").split()
    return dict(row.split("|") for row in rows)


def test_a_database_the_previous_release_made_migrates_to_this_one_with_nothing_lost(
    own_postgres: PostgresCluster, tmp_path, channel_prefix
):
    cluster = own_postgres
    previous = previous_release_tree(tmp_path)
    url = cluster.createdb("twin_ops")
    manage(url, "migrate", "--noinput", root=previous)
    leaves = applied_leaves(cluster, "twin_ops")
    assert {app: leaves[app] for app in PREVIOUS_LEAVES} == PREVIOUS_LEAVES
    enrollment = manage(url, "create_enrollment_key", "--name", "drill", root=previous).strip()
    old = server_start(
        tmp_path, root=previous, DATABASE_URL=url, CHANNEL_LAYER_PREFIX=channel_prefix, **drills.DRILL_ENV
    )
    try:
        credential = drills.post_register(old.url, enrollment, drills.HOSTS[0])
        end = drills.history_post(old.url)
        manage(url, "run_jobs", "--job", "metrics.rollups", root=previous)
        at = drills.history_settled(old.url)
        before = drills.twin_reads(old.url, end=end, at=at)
    finally:
        server_stop(old)
    counts = drills.row_counts(cluster, "twin_ops")
    drills.history_shown(before)

    # The page's upgrade without containers (the block before it is compose's).
    upgrade = drills.sh_blocks("Upgrades and migrations with several replicas")[-1]
    drills.run_as_documented(upgrade, cluster, tmp_path)

    assert applied_leaves(cluster, "twin_ops") != leaves
    assert drills.row_counts(cluster, "twin_ops") == counts
    new = server_start(tmp_path, DATABASE_URL=url, CHANNEL_LAYER_PREFIX=channel_prefix, **drills.DRILL_ENV)
    try:
        after = drills.twin_reads(new.url, end=end, at=at)
        # What the previous release answered, this one answers too; it may only add.
        assert drills.contained(before, after) == []
        body = orjson.dumps(
            {"agent_session": "after-upgrade", "sequence": 1, "samples": [sample_dict(drills.HOSTS[0])]}
        )
        stamp = str(int(time.time()))
        headers = {
            "X-Twin-Key-Id": credential["keyId"],
            "X-Twin-Timestamp": stamp,
            "X-Twin-Signature": signature_compute(secret=credential["signingSecret"], timestamp=stamp, body=body),
        }
        assert drills.post(f"{new.url}/api/metrics/batch", body, headers)["accepted"] == 1
    finally:
        server_stop(new)
