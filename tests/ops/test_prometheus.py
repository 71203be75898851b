"""/metrics: Prometheus text that prometheus_client's own parser reads, moving as requests arrive."""

from __future__ import annotations

import asyncio
import os
import time
import urllib.request
from datetime import timedelta

import orjson
import pytest
import socketio
from django.db import connection
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import sample_dict
from tests.e2e.conftest import server_start, server_stop


def scrape(client, **extra) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by name and labels."""
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return samples_of(response.content.decode())


def samples_of(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.django_db
def test_each_batch_moves_the_request_counter_and_latency_histogram_of_its_view(client, post_batch, open_twin):
    before = scrape(client)
    for i in range(3):
        assert post_batch([sample_dict("prom-01", cpu_load=float(i))]).status_code == 202
    assert post_batch(body=b"not json").status_code == 400
    after = scrape(client)

    def grown(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grown("twin_http_requests_total", view="metrics-batch", method="POST", status="202") == 3
    assert grown("twin_http_requests_total", view="metrics-batch", method="POST", status="400") == 1
    assert grown("twin_http_request_duration_seconds_count", view="metrics-batch", method="POST") == 4
    assert grown("twin_http_request_duration_seconds_sum", view="metrics-batch", method="POST") > 0
    assert grown("twin_http_request_duration_seconds_bucket", view="metrics-batch", method="POST", le="+Inf") == 4


@pytest.mark.django_db
def test_an_unknown_path_is_counted_under_one_label_not_its_own(client):
    before = scrape(client)
    for path in ("/nope-1", "/nope-2", "/nope-3"):
        assert client.get(path).status_code == 404
    after = scrape(client)
    key = {"view": "unresolved", "method": "GET", "status": "404"}
    assert value(after, "twin_http_requests_total", **key) - value(before, "twin_http_requests_total", **key) == 3
    assert not any("nope" in str(labels) for _, labels in after)


def test_the_process_itself_is_described(client):
    samples = scrape(client)
    assert value(samples, "process_resident_memory_bytes") > 0
    assert value(samples, "process_start_time_seconds") > 0


@pytest.mark.django_db
def test_the_database_pool_is_described_on_postgresql(client):
    if connection.vendor != "postgresql":
        pytest.skip("the connection pool is PostgreSQL's (psycopg_pool); SQLite has none")
    from django.conf import settings

    client.get("/readyz")  # at least one connection taken from the pool and given back
    samples = scrape(client)
    pool_max = settings.DATABASES["default"]["OPTIONS"]["pool"]["max_size"]
    assert value(samples, "twin_db_pool_max_connections", database="default") == pool_max
    open_connections = value(samples, "twin_db_pool_connections", database="default", state="idle") + value(
        samples, "twin_db_pool_connections", database="default", state="in_use"
    )
    assert 1 <= open_connections <= pool_max
    assert value(samples, "twin_db_pool_requests_total", database="default") >= 1


def test_openmetrics_is_answered_to_a_scraper_that_asks_for_it(client):
    response = client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert response.content.rstrip().endswith(b"# EOF")


def test_an_address_outside_the_allow_list_is_refused_with_a_json_error(client):
    response = client.get("/metrics", REMOTE_ADDR="192.0.2.10")
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    assert "TWIN_METRICS_ALLOW" in response.json()["detail"]


def test_a_forwarded_address_does_not_get_past_the_allow_list(client):
    response = client.get("/metrics", REMOTE_ADDR="192.0.2.10", headers={"X-Forwarded-For": "127.0.0.1"})
    assert response.status_code == 403


def test_the_token_opens_the_metrics_from_anywhere_and_only_the_token(client, settings):
    settings.TWIN_METRICS_TOKEN = "scrape-token-for-tests"
    good = client.get("/metrics", REMOTE_ADDR="192.0.2.10", headers={"Authorization": "Bearer scrape-token-for-tests"})
    wrong = client.get("/metrics", REMOTE_ADDR="192.0.2.10", headers={"Authorization": "Bearer scrape-token-for-test"})
    assert good.status_code == 200
    assert wrong.status_code == 403
    assert "TWIN_METRICS_TOKEN" in wrong.json()["detail"]


def test_an_allow_list_names_networks(client, settings):
    import ipaddress

    settings.TWIN_METRICS_ALLOW_NETWORKS = [ipaddress.ip_network("192.0.2.0/24")]
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.10").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=15) as response:
        return response.read().decode()


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_processes_sharing_a_multiprocess_directory_report_their_sum(tmp_path, channel_prefix):
    shared = tmp_path / "prometheus"
    shared.mkdir()
    env = {"CHANNEL_LAYER_PREFIX": channel_prefix, "PROMETHEUS_MULTIPROC_DIR": str(shared)}
    first = server_start(tmp_path, **env)
    second = server_start(tmp_path, **env)
    try:
        for _ in range(3):
            fetch(f"{first.url}/healthz")
        for _ in range(5):
            fetch(f"{second.url}/healthz")
        # Either process answers for both.
        for server in (first, second):
            samples = samples_of(fetch(f"{server.url}/metrics"))
            assert value(samples, "twin_http_requests_total", view="healthz", method="GET", status="200") == 8
        samples = samples_of(fetch(f"{first.url}/metrics"))
        # Each process publishes its own memory under its pid.
        pids = {dict(labels)["pid"] for name, labels in samples if name == "twin_process_resident_memory_bytes"}
        assert {str(first.process.pid), str(second.process.pid)} <= pids
    finally:
        server_stop(first)
        server_stop(second)
    # Stopped cleanly, each removed its live gauges; the counters stay, as Prometheus expects.
    left = sorted(os.listdir(shared))
    assert not [name for name in left if name.startswith("gauge_live")], left
    assert any(name.startswith("counter_") for name in left)


def batch_post(url: str, samples: list[dict]) -> int:
    request = urllib.request.Request(
        f"{url}/api/metrics/batch",
        data=orjson.dumps({"samples": samples}),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=15) as response:
        return response.status


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_domain_metrics_of_two_processes_add_up_in_multiprocess_mode(tmp_path, channel_prefix):
    shared = tmp_path / "prometheus"
    shared.mkdir()
    env = {"CHANNEL_LAYER_PREFIX": channel_prefix, "PROMETHEUS_MULTIPROC_DIR": str(shared)}
    first = server_start(tmp_path, **env)
    second = server_start(tmp_path, **env)

    async def dashboards_connected() -> list[dict]:
        clients = [socketio.AsyncClient(reconnection=False) for _ in range(3)]
        try:
            # Two dashboards on the first process, one on the second.
            for client, server in zip(clients, (first, first, second), strict=True):
                await client.connect(server.url, namespaces=["/digital-twin"], transports=["websocket"])
            scrapes = []
            for server in (first, second):
                deadline = time.monotonic() + 10
                while True:
                    samples = samples_of(await asyncio.to_thread(fetch, f"{server.url}/metrics"))
                    if value(samples, "twin_live_clients", mode="full") == 3 or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.1)
                scrapes.append(samples)
            return scrapes
        finally:
            for client in clients:
                await client.disconnect()

    try:
        assert batch_post(first.url, [sample_dict("multi-01"), sample_dict("multi-02")]) == 202
        later = [sample_dict("multi-03"), sample_dict("multi-03", at=timezone.now() + timedelta(days=1))]
        assert batch_post(second.url, later) == 202
        # Either process answers for both: counters, histograms and the clients' live sum.
        for samples in asyncio.run(dashboards_connected()):
            assert value(samples, "twin_ingest_samples_total", outcome="accepted") == 3
            assert value(samples, "twin_ingest_samples_refused_total", reason="timestamp_in_future") == 1
            assert value(samples, "twin_ingest_batches_total", outcome="stored") == 2
            assert value(samples, "twin_ingest_batch_duration_seconds_count") == 2
            assert value(samples, "twin_live_clients", mode="full") == 3
    finally:
        server_stop(first)
        server_stop(second)


def test_the_live_gauges_of_a_process_that_died_unannounced_are_dropped_and_its_counters_kept(tmp_path):
    import subprocess
    import sys

    from ops.prometheus import multiprocess_dead_forget

    # A pid that ran and no longer does (SIGKILL runs no exit hook: its files stay behind).
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    running = os.getppid()
    names = [
        f"gauge_livesum_{dead.pid}.db",
        f"gauge_liveall_{dead.pid}.db",
        f"counter_{dead.pid}.db",
        f"histogram_{dead.pid}.db",
        f"gauge_mostrecent_{dead.pid}.db",
        f"gauge_livesum_{running}.db",
        f"gauge_livesum_{os.getpid()}.db",
    ]
    for name in names:
        (tmp_path / name).write_bytes(b"")

    assert multiprocess_dead_forget(str(tmp_path)) == [dead.pid]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        set(names) - {f"gauge_livesum_{dead.pid}.db", f"gauge_liveall_{dead.pid}.db"}
    )
    assert multiprocess_dead_forget(str(tmp_path)) == []
