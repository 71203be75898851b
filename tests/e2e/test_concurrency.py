"""End to end: fifty agents registering and posting at once, on new and existing hosts."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import orjson
import pytest
from django.conf import settings

from hosts.credentials import signature_compute
from hosts.models import AgentCredential, Host, Link
from hosts.services import enrollment_key_create
from metrics.models import LatestMetrics, Sample
from tests.conftest import sample_dict
from tests.e2e.conftest import server_start, server_stop

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

AGENTS = 50
BATCHES = 4


def test_fifty_agents_at_once_lose_nothing_and_collide_nowhere(transactional_db, tmp_path, channel_prefix):
    # Half the hosts exist already (an admin created them); half are new.
    Host.objects.bulk_create([Host(hostname=f"crowd-{i:02d}") for i in range(0, AGENTS, 2)])
    _, key = enrollment_key_create(name="crowd")
    server = server_start(tmp_path, CHANNEL_LAYER_PREFIX=channel_prefix, TWIN_AGENT_AUTH="signed")
    statuses: list[int] = []

    async def agent(http: aiohttp.ClientSession, i: int) -> None:
        hostname = f"crowd-{i:02d}"
        async with http.post(
            f"{server.url}/api/hosts/register",
            json={"hostname": hostname, "platform": "Linux", "agent_version": "1"},
            headers={"Authorization": f"Bearer {key}"},
        ) as response:
            statuses.append(response.status)
            credential = await response.json()
        now = time.time()

        async def batch(n: int) -> None:
            # Later batches carry older samples, and all go at once: out of order.
            samples = [sample_dict(hostname, at=None, cpu_load=float(n))]
            samples[0]["timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 10 * n))
            body = orjson.dumps({"agent_session": f"s-{i}", "sequence": n, "samples": samples})
            stamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                "X-Twin-Key-Id": credential["keyId"],
                "X-Twin-Timestamp": stamp,
                "X-Twin-Signature": signature_compute(secret=credential["signingSecret"], timestamp=stamp, body=body),
            }
            async with http.post(f"{server.url}/api/metrics/batch", data=body, headers=headers) as response:
                statuses.append(response.status)

        await asyncio.gather(*(batch(n) for n in range(BATCHES)))

    async def crowd() -> None:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            await asyncio.gather(*(agent(http, i) for i in range(AGENTS)))

    try:
        asyncio.run(crowd())
        log = server.output()
    finally:
        server_stop(server)
    assert sorted(set(statuses)) in ([200, 201, 202], [201, 202]), statuses
    assert statuses.count(202) == AGENTS * BATCHES
    assert Sample.objects.filter(host__hostname__startswith="crowd-").count() == AGENTS * BATCHES
    assert AgentCredential.objects.filter(revoked_at__isnull=True).count() == AGENTS
    assert "IntegrityError" not in log and "deadlock" not in log.lower()
    # Whatever order the batches landed in, the latest values are the newest sample's (batch 0).
    latest = set(Host.objects.filter(hostname__startswith="crowd-").values_list("latest__cpu_load", flat=True))
    assert latest == {0.0}


HERD = 200
COLLECTORS = 6
PER_COLLECTOR = 120


def test_collectors_creating_the_same_new_hosts_at_once_create_each_once_with_rack_uplink_and_latest(
    transactional_db, tmp_path, channel_prefix
):
    # Six collectors name overlapping sets of hosts nobody has seen, in different
    # orders, all at once: each host must come out exactly once, placed, linked and current.
    server = server_start(tmp_path, CHANNEL_LAYER_PREFIX=channel_prefix, TWIN_AGENT_AUTH="open")
    now = time.time()
    named: dict[str, list[float]] = {}
    bodies = []
    for c in range(COLLECTORS):
        at = now - 10 * c
        indices = [(c * 37 + k) % HERD for k in range(PER_COLLECTOR)]
        if c % 2:
            indices.reverse()
        samples = []
        for i in indices:
            hostname = f"herd-{i:03d}"
            named.setdefault(hostname, []).append(at)
            sample = sample_dict(hostname, cpu_load=float(c), rack=f"herd-r{i // 20}")
            sample["timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
            sample["position"] = {"x": float(i % 20), "y": 1.0, "z": 0.0}
            samples.append(sample)
        bodies.append(orjson.dumps({"samples": samples}))
    statuses: list[int] = []

    async def collect() -> None:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

            async def post(body: bytes) -> None:
                headers = {"Content-Type": "application/json"}
                async with http.post(f"{server.url}/api/metrics/batch", data=body, headers=headers) as response:
                    statuses.append(response.status)

            await asyncio.gather(*(post(body) for body in bodies))

    try:
        asyncio.run(collect())
        log = server.output()
    finally:
        server_stop(server)
    assert statuses == [202] * COLLECTORS, log
    assert "IntegrityError" not in log and "deadlock" not in log.lower()
    hosts = {h.hostname: h for h in Host.objects.filter(hostname__startswith="herd-").select_related("rack")}
    assert sorted(hosts) == sorted(named)
    for hostname, host in hosts.items():
        i = int(hostname.removeprefix("herd-"))
        assert host.rack is not None and host.rack.name == f"herd-r{i // 20}", hostname
        assert (host.position_x, host.position_y, host.position_z) == (float(i % 20), 1.0, 0.0), hostname
    uplinks = Link.objects.filter(target__hostname__startswith="herd-")
    assert uplinks.count() == len(named)
    assert set(uplinks.values_list("source__hostname", flat=True)) == {settings.TWIN_CORE_HOSTNAME}
    assert Sample.objects.filter(host__hostname__startswith="herd-").count() == COLLECTORS * PER_COLLECTOR
    # Each host shows its newest sample, whichever batch landed last.
    latest = dict(
        LatestMetrics.objects.filter(host__hostname__startswith="herd-").values_list("host__hostname", "sample_time")
    )
    assert {h: t.timestamp() for h, t in latest.items()} == {h: float(int(max(ts))) for h, ts in named.items()}
