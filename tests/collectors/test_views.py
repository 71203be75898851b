"""``POST /api/v1/write``: Prometheus remote-write into the twin, as Prometheus sends it."""

from __future__ import annotations

import cramjam
import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.authtoken.models import Token

from collectors.models import CollectorToken
from collectors.services import collector_token_create, collector_tokens_revoke
from hosts.models import Host
from metrics.models import LatestMetrics, Sample
from tests.collectors.writes import node_scrape, write_body

pytestmark = pytest.mark.django_db

URL = "/api/v1/write"
NOW_MS = int(timezone.now().timestamp() * 1000) // 1000 * 1000 - 60_000


@pytest.fixture
def token():
    return collector_token_create(name="prom-1")[1]


@pytest.fixture
def write(client, token):
    def send(body: bytes, *, auth: str | None = None, **headers: str):
        headers = {
            "Content-Encoding": "snappy",
            "X-Prometheus-Remote-Write-Version": "0.1.0",
            "Authorization": auth if auth is not None else f"Bearer {token}",
            **headers,
        }
        return client.post(URL, data=body, content_type="application/x-protobuf", headers=headers)

    return send


def two_scrapes(**kwargs):
    return node_scrape(NOW_MS - 15_000, busy=10, idle=90, **kwargs), node_scrape(NOW_MS, busy=13, idle=102, **kwargs)


def test_two_scrapes_of_node_exporter_make_a_host_with_the_seeds_fields(write):
    first, second = two_scrapes(extra=5)
    answer = write(write_body(first)).json()
    # A baseline, no CPU share yet; the 5 unmapped series and loopback's 2 are not kept.
    assert answer == {"accepted": 0, "duplicates": 0, "hosts": 1, "ignoredSeries": 7}
    answer = write(write_body(second)).json()
    assert answer["accepted"] == 1
    latest = LatestMetrics.objects.get(host__hostname="node-a")
    assert (latest.cpu_load, latest.memory_used_percent, latest.load_average) == (20.0, 75.0, 0.75)
    assert Host.objects.get(hostname="node-a").platform == "Linux-x86_64"


def test_a_scrape_split_over_several_requests_is_one_sample(write):
    first, second = two_scrapes()
    write(write_body(first))
    # Prometheus shards a scrape's series over several requests: here, three.
    for part in (second[:3], second[3:10], second[10:]):
        assert write(write_body(part)).status_code == 200
    assert Sample.objects.filter(host__hostname="node-a").count() == 1
    assert LatestMetrics.objects.get(host__hostname="node-a").cpu_load == 20.0


def test_a_retried_request_stores_nothing_twice(write):
    first, second = two_scrapes()
    write(write_body(first))
    assert write(write_body(second)).json()["accepted"] == 1
    again = write(write_body(second)).json()
    assert again["accepted"] == 0
    assert Sample.objects.filter(host__hostname="node-a").count() == 1


def test_a_host_is_named_by_its_instance_label_without_the_port(write):
    for scrape in two_scrapes(label="instance", host="db-07"):
        write(write_body(scrape))
    assert Sample.objects.filter(host__hostname="db-07").count() == 1


def test_an_unknown_host_waits_for_approval_when_the_twin_requires_it(write, settings):
    settings.TWIN_REQUIRE_APPROVAL = True
    first, second = two_scrapes()
    write(write_body(first))
    answer = write(write_body(second)).json()
    assert answer["accepted"] == 0 and answer["rejected"][0]["reason"].startswith("pending approval")
    assert Host.objects.get(hostname="node-a").approved is False and not Sample.objects.exists()


def test_stale_markers_are_skipped(write):
    stale = [(labels, [(float("nan"), at) for _, at in samples]) for labels, samples in node_scrape(NOW_MS)]
    assert write(write_body(stale)).json()["hosts"] == 0


@pytest.mark.parametrize(
    ("auth", "code"),
    [
        ("", "not_authenticated"),
        ("Bearer tct_nobody", "not_authenticated"),
        ("Basic dXNlcjpwYXNz", "not_authenticated"),
    ],
)
def test_a_write_without_a_valid_collector_token_is_refused_with_a_challenge(write, auth, code):
    response = write(write_body(node_scrape(NOW_MS)), auth=auth)
    assert response.status_code == 401 and response.json()["error"] == code
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_token_is_refused(write):
    collector_tokens_revoke(tokens=CollectorToken.objects.all(), now=timezone.now())
    response = write(write_body(node_scrape(NOW_MS)))
    assert response.status_code == 401 and response.json()["error"] == "token_revoked"


def test_a_readers_token_does_not_write(write):
    key = Token.objects.create(user=User.objects.create_user("reader")).key
    response = write(write_body(node_scrape(NOW_MS)), auth=f"Token {key}")
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (b"\x05abc", {}, 400, "malformed_snappy"),
        (bytes(cramjam.snappy.compress_raw(b"\xff\xff\xff")), {}, 400, "malformed_protobuf"),
        (b"\xff\xff\xff\xff\x0f" + b"\x00" * 10, {}, 413, "payload_too_large"),  # says it inflates to 4 GB
        (write_body(node_scrape(NOW_MS)), {"Content-Encoding": "gzip"}, 415, "unsupported_media_type"),
    ],
)
def test_a_body_that_is_not_a_snappy_write_request_is_refused_with_its_reason(write, body, headers, status, code):
    response = write(body, **headers)
    assert response.status_code == status and response.json()["error"] == code, response.content
    assert not Sample.objects.exists()


def test_a_body_of_another_type_is_refused(client, token):
    response = client.post(
        URL, data=b"{}", content_type="application/json", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 415
