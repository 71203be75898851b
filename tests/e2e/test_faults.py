"""End to end: the database goes away and comes back while agents post and dashboards watch."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from django.db import connection

from metrics.models import Sample
from tests.conftest import sample_dict
from tests.e2e.conftest import child_database_url, server_start, server_stop
from tests.e2e.tcp_proxy import TcpProxy
from tests.e2e.test_socketio import Dashboard, host_of

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def postgres_behind_a_proxy(transactional_db, django_db_serialized_rollback, tmp_path, channel_prefix):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: the proxy stands in for a database server that goes away")
    settings = connection.settings_dict
    proxy = TcpProxy((settings["HOST"] or "127.0.0.1", int(settings["PORT"] or 5432)))
    proxy.start()
    url = child_database_url().replace(f":{settings['PORT'] or 5432}/", f":{proxy.port}/")
    server = server_start(
        tmp_path, CHANNEL_LAYER_PREFIX=channel_prefix, DATABASE_URL=url, TWIN_REFRESH_SECONDS="0.5", DB_POOL_TIMEOUT="2"
    )
    yield server, proxy
    server_stop(server)
    proxy.stop()


async def post(http: aiohttp.ClientSession, url: str, cpu: float) -> tuple[int, dict, dict]:
    async with http.post(f"{url}/api/metrics/batch", json={"samples": [sample_dict("fault-01", cpu_load=cpu)]}) as r:
        return r.status, dict(r.headers), await r.json()


def test_an_unreachable_database_is_a_503_and_the_twin_recovers_by_itself(postgres_behind_a_proxy):
    server, proxy = postgres_behind_a_proxy
    acknowledged: list[float] = []

    async def scenario() -> None:
        dashboard = Dashboard()
        await dashboard.client.connect(server.url, namespaces=["/digital-twin"], transports=["websocket"])
        try:
            async with aiohttp.ClientSession() as http:
                status, _, _ = await post(http, server.url, 10.0)
                assert status == 202
                acknowledged.append(10.0)

                proxy.stop()
                status, headers, body = await post(http, server.url, 20.0)
                assert status == 503, body
                assert body["error"] == "database_unavailable"
                assert int(headers["Retry-After"]) > 0
                await asyncio.sleep(1.5)
                assert dashboard.client.connected

                proxy.start()
                deadline = time.monotonic() + 30
                while True:
                    status, _, body = await post(http, server.url, 30.0)
                    if status == 202:
                        acknowledged.append(30.0)
                        break
                    assert status == 503, body
                    assert time.monotonic() < deadline, "the twin did not recover within 30 s"
                    await asyncio.sleep(0.5)
            state = await dashboard.wait_for(
                lambda s: (h := host_of(s, "fault-01")) is not None and h["metrics"]["cpuLoad"] == 30.0, timeout=15
            )
            assert state["type"] == "twin-state"
            assert dashboard.client.connected
        finally:
            await dashboard.close()

    asyncio.run(scenario())
    # Exactly the acknowledged samples are stored: the refused one left nothing behind.
    stored = sorted(Sample.objects.filter(host__hostname="fault-01").values_list("cpu_load", flat=True))
    assert stored == acknowledged
