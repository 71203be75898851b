"""End to end: fifty agents registering and posting at once, on new and existing hosts."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import orjson
import pytest

from hosts.credentials import signature_compute
from hosts.models import AgentCredential, Host
from hosts.services import enrollment_key_create
from metrics.models import Sample
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
