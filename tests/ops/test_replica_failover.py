"""A replica dies: two daphne processes behind the project's nginx, one killed with SIGKILL and restarted.

Signed agents (the reference agent's own uplink, spool and backoff) send
numbered batches through nginx from addresses of their own, so nginx's sticky
hash spreads them over both replicas; dashboards (python-socketio clients that
behave as the page's connection.js: reconnect, subscribe to deltas on every
connection, resync on a gap) watch through the same nginx. The replica the
dashboards are on is killed mid-traffic and started again on its port.

What must hold (docs/reliability.md, "A replica dies"):
- every batch a 202 acknowledged is stored once: its receipt once, its samples
  once, and nothing an agent spooled is lost (the agents' spools drain);
- the agents of the killed replica go on through the other one, by themselves:
  nginx passes a request a dead replica refused to the other; a batch that was
  in flight when it died is answered 502/503 and retried by the agent under the
  same session and sequence, which the server stores at most once;
- the dashboards reconnect by themselves and resync: a fresh versioned state
  after the kill, deltas that apply to it again, and, once the agents stop, a
  model equal to what a fresh client is sent;
- what the dead process held in shared places does not outlive it: the
  one-second jobs it was running (its lease, here the status recorder's) go on
  in the survivor at once, and the survivor's /metrics counts neither its
  clients nor the process itself.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import socketio
import urllib3
from django.db import connection
from django.db.models import Count
from django.utils import timezone
from rest_framework.authtoken.models import Token
from twin_agent.backoff import Backoff
from twin_agent.protocol import SignedClient, Uplink, host_register
from twin_agent.spool import Batch, Spool
from twin_agent.transport import Http

from common.formats import iso_utc
from common.processes import HOSTNAME
from hosts.services import enrollment_key_create
from jobs.models import Job
from metrics.models import BatchReceipt, LatestMetrics, Sample
from tests.conftest import sample_dict
from tests.e2e.conftest import LiveServer, server_start, server_stop
from tests.e2e.test_socketio import NAMESPACE
from tests.ops.nginx import nginx_binary
from tests.ops.test_nginx_topology import MAX_BODY_BYTES, Proxy, nginx_start, process_stop, redis_url  # noqa: F401
from tests.ops.test_prometheus import samples_of, value

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

AGENTS = 8
SAMPLE_EVERY_SECONDS = 0.2


# --- the replicas, nginx ------------------------------------------------------------------


@dataclass
class Replicas:
    """Two server processes sharing the database and Redis, each restartable on its own port."""

    directory: Path
    environment: dict[str, str]
    servers: list[LiveServer] = field(default_factory=list)

    def start(self, *, port: int | None = None) -> LiveServer:
        # A directory per start: the log of a killed process is kept beside its successor's.
        directory = self.directory / f"start-{len(self.servers)}"
        directory.mkdir()
        server = server_start(directory, port=port, **self.environment)
        self.servers.append(server)
        return server

    def kill(self, server: LiveServer) -> None:
        """SIGKILL: no shutdown, no goodbye to clients, a transaction in flight left to the database."""
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=10)

    def restart(self, server: LiveServer) -> LiveServer:
        return self.start(port=int(server.url.rsplit(":", 1)[1]))

    def stop(self) -> None:
        for server in self.servers:
            if server.process.poll() is None:
                server_stop(server)


@pytest.fixture
def replicas(tmp_path, channel_prefix, redis_url) -> Iterator[Replicas]:  # noqa: F811 (the fixture imported above)
    nginx_binary()  # skip (or fail under CI) before starting anything
    (tmp_path / "prometheus").mkdir()
    pair = Replicas(
        directory=tmp_path / "replicas",
        environment={
            "REDIS_URL": redis_url,
            "CHANNEL_LAYER_PREFIX": channel_prefix,
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
            "LOG_FORMAT": "json",
            "TWIN_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
            "TWIN_AGENT_AUTH": "signed",
            "TWIN_PUBLIC_READ": "true",
        },
    )
    pair.directory.mkdir()
    pair.start()
    pair.start()
    yield pair
    pair.stop()


@pytest.fixture
def proxy(tmp_path, replicas: Replicas) -> Iterator[Proxy]:
    started = nginx_start(tmp_path / "nginx", replicas.servers)
    yield started
    process_stop(started.process)


def upstream_port(line: dict[str, Any]) -> str:
    """The port of the replica that answered a request (the last nginx tried)."""
    return line["upstream"].split(",")[-1].strip().rsplit(":", 1)[-1]


def port_of(server: LiveServer) -> str:
    return server.url.rsplit(":", 1)[1]


# --- signed agents: the reference agent's uplink ------------------------------------------


def http_from(url: str, address: str) -> Http:
    """The agent's HTTP client, its connections made from ``address``.

    nginx hashes on the client's address; agents on one machine would all land
    on one replica. The agent's ``Http`` has no option for a source address (a
    real agent has its host's own), so the test gives its pool one.
    """
    http = Http(url, timeout=10, connect_timeout=2)
    http._pool = urllib3.PoolManager(
        num_pools=2, maxsize=2, block=True, retries=False, source_address=(address, 0), headers=http._pool.headers
    )
    return http


class SignedAgent:
    """One host's agent: samples into its spool, signed batches out through nginx, answers acted on."""

    def __init__(self, *, url: str, address: str, hostname: str, enrollment: str, spool_path: Path) -> None:
        self.address, self.hostname = address, hostname
        http = http_from(url, address)
        credential = host_register(
            http=http, enrollment_key=enrollment, hostname=hostname, platform="Linux-x86_64", agent_version="1.0.0"
        )
        self.spool = Spool(spool_path, durable=False)
        self.acknowledged: list[Batch] = []
        self.failures: list[str] = []
        self.uplink = Uplink(
            client=SignedClient(http=http, credential=credential),
            spool=self.spool,
            session=uuid.uuid4().hex,
            batch_max_samples=3,
            # Short pauses: the test's seconds are few. The policy is the agent's own.
            backoff=Backoff(base=0.2, cap=1.0),
            on_acknowledged=self.acknowledged.append,
        )
        self.sent = 0

    def run(self, stop: threading.Event) -> None:
        """Collect and send until ``stop``; then send what is left."""
        while not stop.is_set():
            self.sent += 1
            sample = sample_dict(
                self.hostname, timestamp=iso_utc(timezone.now()), cpu_load=float(self.sent % 100), agent_version="1.0.0"
            )
            self.spool.add(stream=self.hostname, sample=orjson.dumps(sample))
            self._flush()
            stop.wait(SAMPLE_EVERY_SECONDS)
        deadline = time.monotonic() + 30
        while self.spool.depth(self.hostname) and time.monotonic() < deadline:
            self._flush()
            time.sleep(max(0.05, self.uplink.waiting()))

    def send_one(self) -> None:
        """One sample, sent until acknowledged (10 s at most)."""
        self.sent += 1
        sample = sample_dict(self.hostname, timestamp=iso_utc(timezone.now()), agent_version="1.0.0")
        self.spool.add(stream=self.hostname, sample=orjson.dumps(sample))
        deadline = time.monotonic() + 10
        while not self.acknowledged:
            assert time.monotonic() < deadline, self.failures
            time.sleep(self.uplink.waiting())
            self._flush()

    def _flush(self) -> None:
        report = self.uplink.flush()
        if report.failure:
            self.failures.append(report.failure)

    def acknowledged_samples(self) -> dict[str, float]:
        """Each acknowledged sample's timestamp, with its CPU load."""
        out: dict[str, float] = {}
        for batch in self.acknowledged:
            for sample in orjson.loads(batch.body)["samples"]:
                out[sample["timestamp"]] = sample["cpu_load"]
        return out


# --- dashboards: as the page's connection.js ----------------------------------------------


class ReconnectingDashboard:
    """A python-socketio client that reconnects by itself and keeps a model of the twin from states and deltas.

    On every connection it subscribes to deltas; a delta that does not follow
    the version held makes it ask for a resync, once per gap
    (dashboard/static/dashboard/js/connection.js, store.js).
    """

    def __init__(self, transport: str) -> None:
        self.transport = transport
        self.client = socketio.AsyncClient(reconnection=True, reconnection_delay=0.5, reconnection_delay_max=2)
        self.connects: list[float] = []
        self.disconnects: list[float] = []
        self.versioned_states: list[float] = []
        self.applied_deltas: list[float] = []
        self.resyncs = 0
        self.version: int | None = None
        self.hosts: dict[str, dict[str, Any]] = {}
        self._resync_asked = False
        self.client.on("connect", self._connected, namespace=NAMESPACE)
        self.client.on("disconnect", self._disconnected, namespace=NAMESPACE)
        self.client.on("twin-state", self._state, namespace=NAMESPACE)
        self.client.on("twin-delta", self._delta, namespace=NAMESPACE)
        self.statuses: list[dict[str, Any]] = []
        self.client.on("host-status", self.statuses.append, namespace=NAMESPACE)

    async def connect(self, url: str) -> ReconnectingDashboard:
        await self.client.connect(url, namespaces=[NAMESPACE], transports=[self.transport])
        return self

    async def close(self) -> None:
        # Not reconnecting now; and a polling client would otherwise wait out its pending long-poll.
        self.client.reconnection = False
        await self.client.eio.disconnect(abort=True)

    async def _connected(self) -> None:
        self.connects.append(time.monotonic())
        self._resync_asked = False
        await self.client.emit("subscribe", {"mode": "delta"}, namespace=NAMESPACE)

    def _disconnected(self, *_: Any) -> None:
        self.disconnects.append(time.monotonic())

    def _state(self, doc: dict[str, Any]) -> None:
        self.hosts = {h["hostname"]: h for h in doc["hosts"]}
        self.version = doc.get("version")
        if self.version is not None:
            self._resync_asked = False
            self.versioned_states.append(time.monotonic())

    async def _delta(self, delta: dict[str, Any]) -> None:
        if self.version is None or delta.get("baseVersion") != self.version:
            if not self._resync_asked:
                self._resync_asked = True
                self.resyncs += 1
                await self.client.emit("resync", namespace=NAMESPACE)
            return
        for host in delta["hosts"]:
            self.hosts[host["hostname"]] = host
        for hostname in delta["removedHosts"]:
            self.hosts.pop(hostname, None)
        self.version = delta["version"]
        self.applied_deltas.append(time.monotonic())

    def cpu_loads(self, hostnames: set[str]) -> dict[str, float | None]:
        return {name: (self.hosts.get(name) or {}).get("metrics", {}).get("cpuLoad") for name in hostnames}


def metrics_of(server: LiveServer) -> dict:
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as response:
        return samples_of(response.read().decode())


def live_clients_reported(server: LiveServer) -> float:
    samples = metrics_of(server)
    return sum(value(samples, "twin_live_clients", mode=mode) for mode in ("full", "delta"))


def process_pids_reported(server: LiveServer) -> set[int]:
    return {
        int(dict(labels)["pid"]) for name, labels in metrics_of(server) if name == "twin_process_start_time_seconds"
    }


async def until(check: Any, *, timeout: float, what: str, shown: Any = None) -> None:
    """Wait for ``check()``; on a timeout, say ``what`` was awaited and what ``shown()`` reads then."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}" + (f" ({shown()})" if shown else "")
        await asyncio.sleep(0.1)


def lease_hold(name: str, owner: str) -> None:
    """Give job ``name``'s lease to ``owner`` for a minute, as a claim in the middle of a run does."""
    try:
        Job.objects.filter(name=name).update(lease_owner=owner, lease_until=timezone.now() + timedelta(seconds=60))
    finally:
        connection.close()


def latest_cpu_loads(hostnames: set[str]) -> dict[str, float | None]:
    """What the database holds as each host's latest CPU load (run on a thread of its own)."""
    try:
        return dict(
            LatestMetrics.objects.filter(host__hostname__in=hostnames).values_list("host__hostname", "cpu_load")
        )
    finally:
        connection.close()


# --- the drill ---------------------------------------------------------------------------


def test_a_replica_killed_and_restarted_loses_nothing_acknowledged_and_dashboards_resync(
    tmp_path, replicas: Replicas, proxy: Proxy
):
    _, enrollment = enrollment_key_create(name="failover")
    agents = [
        SignedAgent(
            url=proxy.url,
            address=f"127.0.0.{n + 2}",
            hostname=f"failover-{n:02}",
            enrollment=enrollment,
            spool_path=tmp_path / f"spool-{n}.sqlite",
        )
        for n in range(AGENTS)
    ]
    hostnames = {agent.hostname for agent in agents}
    stop = threading.Event()
    threads = [threading.Thread(target=agent.run, args=(stop,), daemon=True) for agent in agents]

    def batches_by(address: str, *, port: str | None = None, after: int = 0) -> int:
        return sum(
            1
            for line in proxy.lines()[after:]
            if line["path"] == "/api/metrics/batch"
            and line["client"] == address
            and line["status"] == 202
            and (port is None or upstream_port(line) == port)
        )

    async def scenario() -> tuple[LiveServer, list[ReconnectingDashboard]]:
        dashboards = [await ReconnectingDashboard(t).connect(proxy.url) for t in ("websocket", "polling")]
        try:
            for dashboard in dashboards:
                await until(lambda d=dashboard: d.version is not None, timeout=15, what="a first versioned state")
            for thread in threads:
                thread.start()
            await until(
                lambda: all(agent.acknowledged for agent in agents), timeout=20, what="every agent's first batch"
            )
            await asyncio.sleep(2)
            # The replica the dashboards are on (every client of 127.0.0.1 hashes to one replica).
            on = {upstream_port(x) for x in proxy.lines() if x["path"] == "/socket.io/" and x["client"] == "127.0.0.1"}
            assert len(on) == 1, on
            [victim] = [server for server in replicas.servers if port_of(server) in on]
            survivor = next(server for server in replicas.servers if server is not victim)
            its_agents = [a.address for a in agents if batches_by(a.address, port=port_of(victim))]
            assert its_agents and len(its_agents) < AGENTS, f"the agents are not spread over both: {its_agents}"

            # Killed, as far as the jobs know, in the middle of the status recorder's run.
            await asyncio.to_thread(lease_hold, "twin.status_history", f"{HOSTNAME}:{victim.process.pid}")
            replicas.kill(victim)
            killed_at, lines_at_kill = time.monotonic(), len(proxy.lines())
            # Every agent goes on, through the survivor.
            await until(
                lambda: all(batches_by(a, port=port_of(survivor), after=lines_at_kill) >= 3 for a in its_agents),
                timeout=30,
                what="the killed replica's agents acknowledged through the other",
            )
            # Every dashboard lost its connection, made a new one, and is synced again on it.
            for dashboard in dashboards:
                await until(
                    lambda d=dashboard: d.disconnects and any(t > killed_at for t in d.connects),
                    timeout=30,
                    what=f"the {dashboard.transport} dashboard reconnected",
                )
                await until(
                    lambda d=dashboard: (
                        any(t > killed_at for t in d.versioned_states) and any(t > killed_at for t in d.applied_deltas)
                    ),
                    timeout=30,
                    what=f"the {dashboard.transport} dashboard resynced and follows deltas again",
                )

            # Host statuses go on: a host that joins now gets its first status pushed,
            # long before the dead process's lease (a minute) would have expired.
            late = await asyncio.to_thread(
                SignedAgent,
                url=proxy.url,
                address="127.0.0.200",
                hostname="failover-late",
                enrollment=enrollment,
                spool_path=tmp_path / "spool-late.sqlite",
            )
            await asyncio.to_thread(late.send_one)
            for dashboard in dashboards:
                await until(
                    lambda d=dashboard: any(e.get("hostname") == "failover-late" for e in d.statuses),
                    timeout=20,
                    what=f"the late host's first status at the {dashboard.transport} dashboard",
                )

            # The survivor's /metrics counts the clients connected now, not the dead process's
            # last ones too (SIGKILL runs no exit hook to drop them), and no dead process.
            await until(
                lambda: live_clients_reported(survivor) == len(dashboards),
                timeout=15,
                what=f"/metrics reporting the {len(dashboards)} connected dashboards",
                shown=lambda: f"reported: {live_clients_reported(survivor)}",
            )
            assert process_pids_reported(survivor) == {survivor.process.pid}

            restarted = replicas.restart(victim)
            lines_at_restart = len(proxy.lines())
            # Its agents come back to it (the hash is sticky), and stay stored once.
            await until(
                lambda: any(batches_by(a, port=port_of(restarted), after=lines_at_restart) for a in its_agents),
                timeout=30,
                what="an agent's batch acknowledged by the restarted replica",
            )
            restarted_at = time.monotonic()
            for dashboard in dashboards:
                await until(
                    lambda d=dashboard: d.client.connected and any(t > restarted_at for t in d.applied_deltas),
                    timeout=30,
                    what=f"the {dashboard.transport} dashboard follows deltas after the restart",
                )
            await until(
                lambda: process_pids_reported(survivor) == {survivor.process.pid, restarted.process.pid},
                timeout=15,
                what="/metrics reporting both running processes",
                shown=lambda: f"reported: {process_pids_reported(survivor)}",
            )
        finally:
            stop.set()
            for thread in threads:
                await asyncio.to_thread(thread.join, 40)
        # Once the agents are quiet, every model, the long-lived ones' and a fresh client's,
        # is what the database holds (old state + deltas == fresh state).
        expected = await asyncio.to_thread(latest_cpu_loads, hostnames)
        assert set(expected) == hostnames and None not in expected.values()
        fresh = await ReconnectingDashboard("websocket").connect(proxy.url)
        try:
            for dashboard in [*dashboards, fresh]:
                await until(
                    lambda d=dashboard: d.cpu_loads(hostnames) == expected,
                    timeout=15,
                    what=f"the {dashboard.transport} dashboard's model equals the database",
                    shown=lambda d=dashboard: (
                        f"{d.cpu_loads(hostnames)} != {expected}; version {d.version}, "
                        f"connected {d.client.connected}, resyncs {d.resyncs}, {len(d.applied_deltas)} deltas"
                    ),
                )
        finally:
            for dashboard in [*dashboards, fresh]:
                await dashboard.close()
        return victim, dashboards

    victim, dashboards = asyncio.run(scenario())

    # Nothing an agent spooled is left behind, and every batch went through at last.
    for agent in agents:
        assert agent.spool.depth(agent.hostname) == 0, (agent.hostname, agent.failures[-3:])
    # Every acknowledged batch is stored once, and every acknowledged sample once, with its values.
    receipts = BatchReceipt.objects.filter(reporter__in=hostnames)
    assert not receipts.values("reporter", "agent_session", "sequence").annotate(n=Count("id")).filter(n__gt=1)
    for agent in agents:
        sequences = sorted(b.sequence for b in agent.acknowledged)
        assert len(sequences) == len(set(sequences)), f"{agent.hostname}: a batch acknowledged twice"
        stored_sequences = sorted(
            receipts.filter(reporter=agent.hostname, agent_session=agent.uplink.session).values_list(
                "sequence", flat=True
            )
        )
        assert stored_sequences == sequences, agent.hostname
        acknowledged = agent.acknowledged_samples()
        assert len(acknowledged) == agent.sent, f"{agent.hostname}: a collected sample was never acknowledged"
        stored = {iso_utc(row.timestamp): row.cpu_load for row in Sample.objects.filter(host__hostname=agent.hostname)}
        assert stored == acknowledged, agent.hostname
    # The kill was felt by every dashboard. (Whether a batch was in flight at the kill, and
    # answered 502 then retried, is chance: nginx passes the others on before anyone sees it.)
    assert all(len(d.connects) >= 2 for d in dashboards)
    assert victim.process.returncode == -signal.SIGKILL


def test_an_agent_waiting_on_the_long_poll_of_a_replica_that_dies_gets_its_command_through_the_other(
    tmp_path, replicas: Replicas, proxy: Proxy, django_user_model
):
    from tests.commands.conftest import grant

    operator = django_user_model.objects.create_user("olga", password="a-long-password-1", is_staff=True)
    grant(operator, "add_command", "view_command")
    token = Token.objects.create(user=operator).key
    _, enrollment = enrollment_key_create(name="failover")
    agent = SignedAgent(
        url=proxy.url,
        address="127.0.0.50",
        hostname="waiting-01",
        enrollment=enrollment,
        spool_path=tmp_path / "spool.sqlite",
    )
    registered = proxy.line_wait(lambda x: x["path"] == "/api/hosts/register" and x["client"] == agent.address)
    [victim] = [server for server in replicas.servers if port_of(server) == upstream_port(registered)]
    waiting: dict[str, Any] = {}

    def long_poll() -> None:
        # The agent's own request: signed GET, waiting up to 20 s for an invocation.
        reply = agent.uplink.client.get("/api/commands/pending?wait=20", timeout=40)
        waiting.update(status=reply.status, body=reply.json())

    poll = threading.Thread(target=long_poll, daemon=True)
    poll.start()
    time.sleep(2)  # the poll waits on the victim
    replicas.kill(victim)
    # A GET is safe to send again: nginx passes the one in flight to the other replica,
    # where it waits again; the command, sent through nginx too, wakes it there.
    body = orjson.dumps({"action": "ping", "targets": {"hosts": ["waiting-01"]}})
    request = urllib.request.Request(
        f"{proxy.url}/api/commands",
        data=body,
        headers={"Content-Type": "application/json", "Authorization": f"Token {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
        command = orjson.loads(response.read())
    poll.join(30)
    assert waiting["status"] == 200, waiting
    assert [i["commandId"] for i in waiting["body"]["invocations"]] == [command["id"]]
    line = proxy.line_wait(lambda x: x["path"] == "/api/commands/pending")
    assert line["upstream"].count(",") == 1 and line["upstream_status"].startswith("502, 200"), line
