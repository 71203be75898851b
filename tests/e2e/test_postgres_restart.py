"""End to end: PostgreSQL itself restarts (cleanly, and by a crash) while signed agents post.

Not a cut connection (``test_faults.py``): the server process of the database
goes away, every session with it, and a new one starts on the same port. A
cluster of the test's own takes the restarts; the shared server is never touched.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp
import orjson
import pytest

from hosts.credentials import signature_compute
from tests.conftest import iso, sample_dict
from tests.e2e.conftest import LiveServer, manage, server_start, server_stop
from tests.e2e.postgres_cluster import PostgresCluster, own_cluster
from tests.e2e.test_socketio import host_of

pytestmark = [pytest.mark.e2e]

AGENTS = 4
SAMPLES_PER_BATCH = 5
# Acknowledged batches each agent needs before the restart, and after it.
BEFORE, AFTER = 3, 5


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[tuple[PostgresCluster, str]]:
    """A migrated twin database on a PostgreSQL cluster of this module's own."""
    with own_cluster("to restart a database") as cluster:
        url = cluster.createdb("twin")
        manage(url, "migrate", "--noinput")
        yield cluster, url


@dataclass
class Agent:
    """A registered host's agent as the reference agent behaves: keeps a batch until it is acknowledged.

    A batch answered 503 (or not answered at all) is sent again as it was, same
    session and sequence, re-signed; the server must store it once however often
    it arrives.
    """

    http: aiohttp.ClientSession
    url: str
    hostname: str
    key_id: str = ""
    secret: str = ""
    sequence: int = 0
    acknowledged: list[dict] = field(default_factory=list)
    answers: list[tuple[int, str | None, dict]] = field(default_factory=list)
    last_body: bytes = b""

    async def register(self, enrollment: str) -> None:
        async with self.http.post(
            f"{self.url}/api/hosts/register",
            json={"hostname": self.hostname, "platform": "Linux", "agent_version": "1"},
            headers={"Authorization": f"Bearer {enrollment}"},
        ) as response:
            assert response.status == 201, await response.text()
            credential = await response.json()
        self.key_id, self.secret = credential["keyId"], credential["signingSecret"]

    def next_batch(self) -> tuple[bytes, list[dict]]:
        self.sequence += 1
        base = time.time() - 3600 + self.sequence * SAMPLES_PER_BATCH
        samples = [
            sample_dict(self.hostname, cpu_load=float(self.sequence)) | {"timestamp": iso_at(base + i)}
            for i in range(SAMPLES_PER_BATCH)
        ]
        return orjson.dumps({"agent_session": "restart", "sequence": self.sequence, "samples": samples}), samples

    async def deliver(self, body: bytes, samples: list[dict]) -> dict:
        """Send one batch until it is acknowledged (202), as the agent's spool does; the acknowledgement."""
        self.last_body = body
        while True:
            stamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                "X-Twin-Key-Id": self.key_id,
                "X-Twin-Timestamp": stamp,
                "X-Twin-Signature": signature_compute(secret=self.secret, timestamp=stamp, body=body),
            }
            try:
                async with self.http.post(f"{self.url}/api/metrics/batch", data=body, headers=headers) as response:
                    answer = await response.json(content_type=None)
                    self.answers.append((response.status, response.headers.get("Retry-After"), answer))
                    if response.status == 202:
                        self.acknowledged.extend(samples)
                        return answer
            except (aiohttp.ClientError, TimeoutError):
                self.answers.append((0, None, {}))
            # A real agent waits Retry-After; the test keeps the window busy instead.
            await asyncio.sleep(0.1)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.deliver(*self.next_batch())


def iso_at(epoch: float) -> str:
    return iso(datetime.fromtimestamp(int(epoch), UTC))


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_a_restarted_postgresql_is_a_503_meanwhile_then_recovered_by_itself_with_each_sample_stored_once(
    own_postgres, tmp_path, channel_prefix, mode
):
    cluster, url = own_postgres
    enrollment = manage(url, "create_enrollment_key", "--name", f"restart-{mode}").strip()
    server = server_start(
        tmp_path,
        DATABASE_URL=url,
        CHANNEL_LAYER_PREFIX=channel_prefix,
        TWIN_AGENT_AUTH="signed",
        TWIN_REFRESH_SECONDS="0.5",
        DB_POOL_TIMEOUT="2",
    )
    try:
        agents = asyncio.run(restart_while_agents_post(server, cluster, mode, enrollment))
        assert server.process.poll() is None, "the server exited instead of recovering"
        log = server.output()
    finally:
        server_stop(server)

    answers = [answer for agent in agents for answer in agent.answers]
    refused = [(status, retry_after, body) for status, retry_after, body in answers if status != 202]
    # Meanwhile: a 503 that says when to come back, never a 500 (or any other refusal).
    assert refused, f"no request met the restart ({mode}): the test proved nothing"
    for status, retry_after, body in refused:
        assert status in (0, 503), (status, body)
        if status == 503:
            assert body["error"] == "database_unavailable" and int(retry_after) > 0, body
    assert "Traceback" not in log, log[-4000:]

    # Exactly once: each acknowledged sample is stored, once; nothing else is.
    hostnames = ",".join(f"'{agent.hostname}'" for agent in agents)
    stored = cluster.sql(
        "twin",
        "select h.hostname, to_char(s.timestamp at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), count(*) "
        f"from metrics_sample s join hosts_host h on h.id = s.host_id where h.hostname in ({hostnames}) "
        "group by 1, 2",
    ).split()
    rows = [line.split("|") for line in stored]
    assert {count for _, _, count in rows} == {"1"}
    acknowledged = {(agent.hostname, s["timestamp"]) for agent in agents for s in agent.acknowledged}
    assert {(hostname, at) for hostname, at, _ in rows} == acknowledged
    # One receipt per batch, holding all its samples: the retries recorded nothing more.
    receipts = cluster.sql(
        "twin",
        f"select reporter, count(*), sum(accepted) from metrics_batchreceipt where reporter in ({hostnames}) "
        "group by 1",
    ).split()
    assert sorted(line.split("|") for line in receipts) == [
        [agent.hostname, str(agent.sequence), str(agent.sequence * SAMPLES_PER_BATCH)] for agent in agents
    ]


async def restart_while_agents_post(
    server: LiveServer, cluster: PostgresCluster, mode: str, enrollment: str
) -> list[Agent]:
    """Agents post all along; PostgreSQL restarts once each had a few batches acknowledged."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http:
        agents = [Agent(http, server.url, f"restart-{mode}-{i}") for i in range(AGENTS)]
        for agent in agents:
            await agent.register(enrollment)
        stop = asyncio.Event()
        runs = [asyncio.create_task(agent.run(stop)) for agent in agents]
        await until(lambda: all(len(a.acknowledged) >= BEFORE * SAMPLES_PER_BATCH for a in agents), "before")
        counts = [len(a.acknowledged) for a in agents]
        await asyncio.to_thread(cluster.restart, mode)
        # Recovery by itself: the same server process acknowledges batches again.
        await until(
            lambda: all(
                len(a.acknowledged) >= n + AFTER * SAMPLES_PER_BATCH for a, n in zip(agents, counts, strict=True)
            ),
            "after",
        )
        stop.set()
        await asyncio.wait_for(asyncio.gather(*runs), timeout=30)
        # An agent whose acknowledgement was lost in the restart sends its batch again: stored already.
        for agent in agents:
            again = await agent.deliver(agent.last_body, [])
            assert again == {"accepted": 0, "duplicate": True, "receivedAt": again["receivedAt"]}, again
        # The read side recovered too: ready, and the twin shows each host's last batch.
        async with http.get(f"{server.url}/readyz") as response:
            assert response.status == 200, await response.text()
        deadline = time.monotonic() + 15
        while True:
            async with http.get(f"{server.url}/api/twin/state") as response:
                state = await response.json()
            shown = {a.hostname: host_of(state, a.hostname)["metrics"]["cpuLoad"] for a in agents}
            if shown == {a.hostname: float(a.sequence) for a in agents}:
                return agents
            assert time.monotonic() < deadline, f"the twin did not show the last batches: {shown}"
            await asyncio.sleep(0.2)


async def until(condition: Callable[[], bool], what: str, timeout: float = 45) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"agents did not get their batches acknowledged ({what} the restart)"
        await asyncio.sleep(0.1)
