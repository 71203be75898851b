"""What the backup and upgrade drills of docs/operations.md share: a twin with history, and the reads that must survive.

The history is made through the public API (batches in, the jobs that roll up
and record statuses), so the same code makes it on any release; the reads are
the documented ones (the twin at a time, a host's series raw and from rollups,
its status changes), asked at a fixed moment so two servers can be compared.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson

from tests.conftest import iso
from tests.e2e.conftest import ROOT
from tests.e2e.postgres_cluster import PostgresCluster

HOSTS = ("drill-01", "drill-02", "drill-03")
# Ninety minutes of a sample a minute: raw series, 5-minute and hourly rollups.
MINUTES = 90
# Thresholds short enough that every host is offline a few seconds after its last batch:
# its status history then holds data, stale and offline, and no change comes later.
STATUS_ENV = {"TWIN_STALE_AFTER_SECONDS": "1", "TWIN_OFFLINE_AFTER_SECONDS": "2"}
# Both servers of a drill: one twin id whatever the database's name, unsigned batches for the history.
DRILL_ENV = {"TWIN_ID": "twin-drill", "TWIN_AGENT_AUTH": "open", **STATUS_ENV}
# The metrics every release since the history knows (a later one adds more).
FIELDS = "cpuLoad,memoryUsedPercent,loadAverage,uptimeSeconds,netBytesTx,netBytesRx"
OPERATIONS = (ROOT / "docs" / "operations.md").read_text()


def sh_blocks(section: str) -> list[str]:
    """The ``sh`` code blocks of a section of docs/operations.md, in order."""
    text = OPERATIONS.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", text, re.S)


def run_as_documented(block: str, cluster: PostgresCluster, tmp_path: Path) -> None:
    """Each line of ``block`` in a shell, pointed at ``cluster`` instead of the default port.

    A ``git`` line is the operator's checkout of the new release: the test runs in it already.
    """
    lines = [line for line in block.splitlines() if not line.startswith("git ")]
    script = (
        "\n".join(lines)
        .replace("-h 127.0.0.1", f"-h 127.0.0.1 -p {cluster.port}")
        .replace("127.0.0.1:5432", f"127.0.0.1:{cluster.port}")
        .replace("/tmp/", f"{tmp_path}/")
        .replace(".venv/bin/python", sys.executable)
    )
    # The cluster's own client programs first: pg_dump refuses a server newer than itself.
    env = {**os.environ, "PATH": f"{cluster.bindir}:{os.environ['PATH']}"}
    out = subprocess.run(["bash", "-euxc", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


TABLES = (
    "hosts_host",
    "hosts_rack",
    "hosts_link",
    "metrics_sample",
    "metrics_latestmetrics",
    "metrics_rollup5m",
    "metrics_rollup1h",
    "twin_hoststatusevent",
)


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=15) as response:
        return orjson.loads(response.read())


def post(url: str, body: bytes, headers: dict[str, str] | None = None) -> dict:
    """POST a JSON body; the answer's document (any error raises, with its status)."""
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json", **(headers or {})}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return orjson.loads(response.read())


def post_register(server_url: str, enrollment: str, hostname: str) -> dict:
    """Register ``hostname``'s agent with an enrollment key; its credential."""
    body = orjson.dumps({"hostname": hostname, "platform": "Linux-x86_64", "agent_version": "0.1.0"})
    return post(f"{server_url}/api/hosts/register", body, {"Authorization": f"Bearer {enrollment}"})


def history_post(server_url: str) -> datetime:
    """Each host's last ``MINUTES`` minutes, as its agent would have sent them; the end of the history."""
    end = datetime.now(UTC).replace(microsecond=0)
    for h, hostname in enumerate(HOSTS):
        samples = []
        for m in range(MINUTES, 0, -1):
            at = end - timedelta(minutes=m)
            samples.append(
                {
                    "hostname": hostname,
                    "timestamp": iso(at),
                    "cpu_load": float((m * 7 + h * 13) % 100),
                    "memory_used_percent": 40.0 + h + (m % 10),
                    "load_average": round(0.5 + (m % 5) * 0.25, 2),
                    "uptime_seconds": 100_000 - m * 60,
                    "agent_version": "0.1.0",
                    "platform": "Linux-x86_64",
                    # A counter that wraps now and then (as at a reboot): the series leaves those pairs out.
                    "net_bytes_tx": (MINUTES - m) * 1_000_000 * (h + 1) % 50_000_000,
                    "net_bytes_rx": (MINUTES - m) * 700_000,
                    "rack": f"drill-r{h % 2}",
                    "position": {"x": float(h), "y": 0.0, "z": 0.0},
                }
            )
        answer = post(f"{server_url}/api/metrics/batch", orjson.dumps({"samples": samples}))
        assert answer["accepted"] == MINUTES, answer
    return end


def history_settled(server_url: str, timeout: float = 30) -> datetime:
    """Wait until every host's status history ends offline (nothing changes after); that moment."""
    deadline = time.monotonic() + timeout
    while True:
        # Data, then the clock alone: stale, offline (a registered host began offline, before its data).
        last = [[e["to"] for e in events(server_url, hostname)[-2:]] for hostname in HOSTS]
        if all(e == ["stale", "offline"] for e in last):
            return datetime.now(UTC).replace(microsecond=0)
        assert time.monotonic() < deadline, f"the hosts did not go offline: {last}"
        time.sleep(0.3)


def events(server_url: str, hostname: str, **query: str) -> list[dict]:
    return get(f"{server_url}/api/hosts/{hostname}/events?{urlencode(query)}")["events"]


def twin_reads(server_url: str, *, end: datetime, at: datetime) -> dict[str, Any]:
    """The documented reads of a twin with history, at fixed times, keyed by what was asked."""
    reads: dict[str, Any] = {"state": get(f"{server_url}/api/twin/state?{urlencode({'at': iso(at)})}")}
    start = end - timedelta(minutes=MINUTES + 5)
    for hostname in HOSTS:
        for step in (60, 300, 3600):
            query = urlencode({"from": iso(start), "to": iso(end), "step": step, "fields": FIELDS})
            reads[f"{hostname} series step {step}"] = get(f"{server_url}/api/hosts/{hostname}/metrics?{query}")
        reads[f"{hostname} events"] = events(server_url, hostname, to=iso(at))
    return reads


def history_shown(reads: dict[str, Any]) -> None:
    """The reads hold the history made: raw and rolled-up series, and the hosts' status changes."""
    for hostname in HOSTS:
        raw, five, hourly = (reads[f"{hostname} series step {step}"] for step in (60, 300, 3600))
        assert (raw["resolution"], five["resolution"], hourly["resolution"]) == ("raw", "5m", "1h")
        assert len(raw["times"]) == MINUTES and len(five["times"]) >= MINUTES // 5 and hourly["times"]
        assert [e["to"] for e in reads[f"{hostname} events"]][-2:] == ["stale", "offline"]
    assert {h["hostname"] for h in reads["state"]["hosts"]} >= set(HOSTS)


def row_counts(cluster: PostgresCluster, database: str) -> dict[str, int]:
    return {table: int(cluster.sql(database, f"select count(*) from {table}")) for table in TABLES}


def contained(old: Any, new: Any, where: str = "") -> list[str]:
    """Where ``new`` lost or changed what ``old`` held: keys a later release adds are allowed."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            problem
            for key, value in old.items()
            for problem in (contained(value, new[key], f"{where}.{key}") if key in new else [f"{where}.{key}: missing"])
        ]
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            return [f"{where}: {len(old)} items, now {len(new)}"]
        return [
            problem
            for i, (o, n) in enumerate(zip(old, new, strict=True))
            for problem in contained(o, n, f"{where}[{i}]")
        ]
    return [] if old == new else [f"{where}: {old!r}, now {new!r}"]
