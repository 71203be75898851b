"""The production topology without containers: two daphne processes sharing Redis behind the
project's own nginx configuration, all on loopback.

What compose runs in containers runs here as processes: the same template rendered for
loopback ports, the same server command, the same settings. Skipped only when nginx is
not installed (CI installs Debian's and sets TWIN_REQUIRE_NGINX, which turns the skip
into a failure).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import socketio

from tests.conftest import sample_dict
from tests.e2e.conftest import LiveServer, free_port, server_start, server_stop
from tests.e2e.test_socketio import NAMESPACE, Dashboard, host_of
from tests.ops.nginx import MAX_BODY_BYTES, Proxy, nginx_binary, nginx_start, port_wait, process_stop
from tests.ops.test_prometheus import samples_of, value

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def redis_url(tmp_path) -> Iterator[str]:
    """The run's Redis when it has one, else a private redis-server on a free port."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("two processes share the twin through Redis: set REDIS_URL or install redis-server")
    port = free_port()
    log = tmp_path / "redis.log"
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    port_wait(port, process, log)
    yield f"redis://127.0.0.1:{port}/0"
    process_stop(process)


@pytest.fixture
def replicas(tmp_path, channel_prefix, redis_url) -> Iterator[list[LiveServer]]:
    nginx_binary()  # skip (or fail under CI) before starting anything
    shared = {
        "REDIS_URL": redis_url,
        "CHANNEL_LAYER_PREFIX": channel_prefix,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
        "LOG_FORMAT": "json",
        "TWIN_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
    }
    (tmp_path / "prometheus").mkdir()
    started = [server_start(tmp_path, **shared), server_start(tmp_path, **shared)]
    yield started
    for server in started:
        server_stop(server)


@pytest.fixture
def proxy(tmp_path, replicas) -> Iterator[Proxy]:
    started = nginx_start(tmp_path / "nginx", replicas)
    yield started
    process_stop(started.process)


async def post_from(address: str, url: str, body: bytes, request_id: str) -> tuple[int, dict[str, str], bytes]:
    """POST from a loopback address of our choosing (nginx hashes on the client's address)."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0))
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.post(
            f"{url}/api/metrics/batch",
            data=body,
            headers={"Content-Type": "application/json", "X-Request-ID": request_id},
        ) as response,
    ):
        return response.status, dict(response.headers), await response.read()


def answered_by(proxy: Proxy, replicas: list[LiveServer], request_id: str) -> LiveServer:
    """The replica nginx passed a request to, from its access log."""
    line = proxy.line_wait(lambda x: x["request_id"] == request_id)
    port = line["upstream"].rsplit(":", 1)[-1]
    return next(server for server in replicas if server.url.endswith(f":{port}"))


def app_lines(server: LiveServer) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in server.output().splitlines() if line.startswith("{")]


def test_dashboards_and_agents_work_through_nginx_in_front_of_two_replicas(proxy: Proxy, replicas):
    async def scenario() -> dict[str, Any]:
        # A dashboard on the polling transport: every request of its session must reach the
        # replica that opened it (sticky), or the session is unknown to the other one.
        dashboard = await Dashboard().connect(proxy.url, "polling")
        try:
            await dashboard.wait_for(lambda s: True, timeout=10)
            # Agents from successive loopback addresses until both replicas have taken a batch.
            handled: dict[str, list[str]] = {}
            last = 0.0
            for n in range(2, 34):
                request_id = f"rid-nginx-{n}"
                body = orjson.dumps({"samples": [sample_dict("nginx-01", cpu_load=float(n))]})
                status, headers, text = await post_from(f"127.0.0.{n}", proxy.url, body, request_id)
                assert status == 202, text
                assert headers["X-Request-ID"] == request_id
                last = float(n)
                handled.setdefault(answered_by(proxy, replicas, request_id).url, []).append(request_id)
                if len(handled) == 2:
                    break
            assert len(handled) == 2, f"every batch went to one replica: {handled}"
            # Whichever replica took the last batch, the dashboard's replica pushes it (Redis).
            state = await dashboard.wait_for(
                lambda s: (h := host_of(s, "nginx-01")) is not None and h["metrics"]["cpuLoad"] == last, timeout=15
            )
            assert dashboard.client.connected
            assert state["type"] == "twin-state"
            return handled
        finally:
            await dashboard.close()

    handled = asyncio.run(scenario())
    # The request id nginx passed on is the one each replica logged.
    for server in replicas:
        logged = {line.get("request_id") for line in app_lines(server)}
        assert set(handled[server.url]) <= logged

    # And a websocket upgrades through the same proxy.
    async def websocket() -> None:
        dashboard = await Dashboard().connect(proxy.url, "websocket")
        try:
            assert (await dashboard.wait_for(lambda s: True, timeout=10))["type"] == "twin-state"
        finally:
            await dashboard.close()

    asyncio.run(websocket())
    proxy.line_wait(lambda line: line["path"] == "/socket.io/" and line["status"] == 101)


def test_without_the_sticky_line_the_polling_transport_breaks(tmp_path, replicas):
    """The control: the same topology, round robin, and a polling session cannot hold."""
    proxy = nginx_start(tmp_path / "nginx-round-robin", replicas, sticky=False)

    async def scenario() -> None:
        client = socketio.AsyncClient(reconnection=False)
        arrived = asyncio.Event()
        client.on("twin-state", lambda _state: arrived.set(), namespace=NAMESPACE)
        try:
            with pytest.raises((socketio.exceptions.ConnectionError, TimeoutError)):
                await client.connect(proxy.url, namespaces=[NAMESPACE], transports=["polling"], wait_timeout=5)
                await asyncio.wait_for(arrived.wait(), 5)
        finally:
            await client.eio.disconnect(abort=True)

    try:
        asyncio.run(scenario())
    finally:
        process_stop(proxy.process)
    assert "Invalid session" in "".join(server.output() for server in replicas) or any(
        line["status"] == 400 and line["path"] == "/socket.io/" for line in proxy.lines()
    )


def test_nginx_answers_for_itself_in_the_apis_json_style_and_each_replica_for_both(proxy: Proxy, replicas):
    async def scenario() -> None:
        async with aiohttp.ClientSession() as http:
            # A body over TWIN_MAX_BODY_BYTES never reaches a replica.
            big = orjson.dumps({"samples": [sample_dict("big-01", agent_version="x" * MAX_BODY_BYTES)]})
            async with http.post(
                f"{proxy.url}/api/metrics/batch", data=big, headers={"Content-Type": "application/json"}
            ) as response:
                assert response.status == 413
                body = await response.json(content_type=None)
                assert body["error"] == "payload_too_large"
                assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])
            # The metrics are not for the public side.
            async with http.get(f"{proxy.url}/metrics") as response:
                assert (response.status, (await response.json())["error"]) == (404, "not_found")
            # Readiness and the seed's health answer through the proxy; nginx makes up a request id.
            async with http.get(f"{proxy.url}/readyz") as response:
                assert (response.status, (await response.json())["status"]) == (200, "ready")
                assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])
            async with http.get(f"{proxy.url}/api/health") as response:
                assert (response.status, await response.json()) == (200, {"status": "ok"})
            # Collected static files come from nginx; one it lacks falls back to the app.
            async with http.get(f"{proxy.url}/static/nginx-probe.txt") as response:
                assert (response.status, await response.text()) == (200, "served by nginx\n")
            async with http.get(f"{proxy.url}/static/admin/css/base.css") as response:
                assert response.status == 200
                assert "{" in await response.text()

    asyncio.run(scenario())
    assert not any("/api/metrics/batch" in server.output() for server in replicas)

    # Prometheus scrapes each replica directly; either one reports the requests of both
    # (PROMETHEUS_MULTIPROC_DIR shared, as two processes on one machine would).
    for server in replicas:
        for _ in range(3):
            with urllib.request.urlopen(f"{server.url}/healthz", timeout=10) as response:
                assert response.status == 200
    for server in replicas:
        with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as response:
            samples = samples_of(response.read().decode())
        assert value(samples, "twin_http_requests_total", view="healthz", method="GET", status="200") == 6


def test_a_page_served_through_nginx_connects_with_its_own_origin(proxy: Proxy):
    async def scenario() -> None:
        for transport in ("polling", "websocket"):
            client = socketio.AsyncClient(reconnection=False)
            await client.connect(
                proxy.url, namespaces=[NAMESPACE], transports=[transport], headers={"Origin": proxy.url}
            )
            assert client.connected
            await client.eio.disconnect(abort=True)

    asyncio.run(scenario())


def test_a_foreign_origin_is_refused_through_nginx_too(proxy: Proxy):
    async def scenario() -> None:
        client = socketio.AsyncClient(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await client.connect(
                proxy.url, namespaces=[NAMESPACE], transports=["polling"], headers={"Origin": "http://evil.example"}
            )
        await client.eio.disconnect(abort=True)

    asyncio.run(scenario())


# A replica that takes a request and never answers it: it reads the request, says so, and waits to be killed.
HANGING_UPSTREAM = """
import socket, sys, time
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", int(sys.argv[1])))
server.listen()
while True:
    conn, _ = server.accept()
    data = b""
    while b"\\r\\n\\r\\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    if b"\\r\\n\\r\\n" in data:
        print("in flight", flush=True)
        time.sleep(120)
    conn.close()
"""


def hanging_upstream(directory: Path, name: str) -> LiveServer:
    port = free_port()
    log = directory / f"upstream-{name}.log"
    process = subprocess.Popen(
        [sys.executable, "-c", HANGING_UPSTREAM, str(port)], stdout=log.open("w"), stderr=subprocess.STDOUT
    )
    port_wait(port, process, log)
    return LiveServer(url=f"http://127.0.0.1:{port}", process=process, log=log)


def test_a_request_in_flight_to_a_killed_replica_gets_the_documented_503_with_retry_after(tmp_path):
    nginx_binary()
    upstreams = [hanging_upstream(tmp_path, "1"), hanging_upstream(tmp_path, "2")]
    proxy = nginx_start(tmp_path / "nginx", upstreams)

    async def scenario() -> tuple[int, dict[str, str], bytes]:
        body = orjson.dumps({"samples": [sample_dict("in-flight-01")]})
        posting = asyncio.create_task(post_from("127.0.0.1", proxy.url, body, "rid-in-flight"))
        deadline = time.monotonic() + 10
        while (holder := next((u for u in upstreams if "in flight" in u.output()), None)) is None:
            assert time.monotonic() < deadline, "no upstream received the request"
            await asyncio.sleep(0.05)
        holder.process.send_signal(signal.SIGKILL)
        return await asyncio.wait_for(posting, 30)

    try:
        status, headers, text = asyncio.run(scenario())
    finally:
        process_stop(proxy.process)
        for upstream in upstreams:
            upstream.process.kill()
            upstream.process.wait()
    assert status == 503
    assert int(headers["Retry-After"]) > 0
    assert headers["Content-Type"].startswith("application/json")
    assert headers["X-Request-ID"] == "rid-in-flight"
    assert orjson.loads(text)["error"] == "unavailable"
    line = proxy.line_wait(lambda x: x["request_id"] == "rid-in-flight")
    assert (line["status"], line["upstream_status"]) == (503, "502")
