"""End to end: the history's jobs run once across two server processes; readers hear of status changes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
import socketio

from jobs.models import Job
from tests.conftest import sample_dict
from tests.e2e.conftest import server_start, server_stop
from twin.models import HostStatusEvent

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

NAMESPACE = "/digital-twin"
FAST_CLOCK = {"TWIN_STALE_AFTER_SECONDS": "1", "TWIN_OFFLINE_AFTER_SECONDS": "2"}


async def post(url: str, samples: list[dict[str, Any]]) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/api/metrics/batch", json={"samples": samples}) as response,
    ):
        assert response.status == 202, await response.text()


def changes(hostname: str) -> list[tuple]:
    return [
        (e.from_status or None, e.to_status, e.cause)
        for e in HostStatusEvent.objects.filter(host__hostname=hostname).order_by("at", "id")
    ]


def test_a_status_change_reaches_readers_as_a_host_status_event(transactional_db, tmp_path, channel_prefix):
    server = server_start(tmp_path, CHANNEL_LAYER_PREFIX=channel_prefix, **FAST_CLOCK)
    heard: list[dict[str, Any]] = []

    async def scenario() -> None:
        client = socketio.AsyncClient(reconnection=False)
        client.on("host-status", heard.append, namespace=NAMESPACE)
        await client.connect(server.url, namespaces=[NAMESPACE], transports=["websocket"])
        try:
            await post(server.url, [sample_dict("quiet-01")])
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not any(
                e["hostname"] == "quiet-01" and e["to"] == "offline" for e in heard
            ):
                await asyncio.sleep(0.1)
        finally:
            await client.eio.disconnect(abort=True)

    try:
        asyncio.run(scenario())
    finally:
        server_stop(server)
    mine = [e for e in heard if e["hostname"] == "quiet-01"]
    assert [(e["from"], e["to"], e["cause"]) for e in mine] == [
        (None, "online", "inventory"),
        ("online", "stale", "silence"),
        ("stale", "offline", "silence"),
    ]
    assert all(e["type"] == "host-status" and e["at"].endswith("Z") for e in mine)


def test_two_server_processes_run_each_job_once_and_record_each_change_once(transactional_db, tmp_path, channel_prefix):
    started = time.monotonic()
    first = server_start(tmp_path, CHANNEL_LAYER_PREFIX=channel_prefix, **FAST_CLOCK)
    second = server_start(tmp_path, CHANNEL_LAYER_PREFIX=channel_prefix, **FAST_CLOCK)
    try:
        asyncio.run(post(first.url, [sample_dict("twice-01")]))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and ("stale", "offline", "silence") not in changes("twice-01"):
            time.sleep(0.2)
        time.sleep(3)  # both runners keep ticking: nothing more may be recorded
        elapsed = time.monotonic() - started
        recorder = Job.objects.get(name="twin.status_history")
    finally:
        server_stop(first)
        server_stop(second)
    assert changes("twice-01") == [
        (None, "online", "inventory"),
        ("online", "stale", "silence"),
        ("stale", "offline", "silence"),
    ]
    # Due every second and claimed by one process a time: never two runs a second.
    assert 3 <= recorder.runs <= elapsed + 2, (recorder.runs, elapsed)
    assert recorder.failures == 0, recorder.last_error
    rollups = Job.objects.get(name="metrics.rollups")
    assert rollups.runs == 1 and rollups.last_ok, rollups.last_error
    assert Job.objects.get(name="metrics.prune").runs == 1
