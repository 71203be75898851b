"""Logs: a request id on every line of a request, JSON when asked, and never a secret."""

from __future__ import annotations

import asyncio
import http.cookiejar
import logging
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import orjson
import pytest
import socketio

from ops.logs import JsonFormatter, PlainFormatter, RequestIdFilter, redact, request_id_from_header, request_id_var
from tests.conftest import SigningAgent, sample_dict
from tests.e2e.conftest import LiveServer, server_start, server_stop

# --- the pieces ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("Authorization: Bearer tek_abcdefghijklmnopqrstuvwxyz0123456789", "abcdefghijklmnopqrstuvwxyz0123456789"),
        ("{'Authorization': 'Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b'}", "9944b09199c62bcf9418ad846dd0e4bb"),
        ("X-Twin-Signature: sha256=" + "ab" * 32, "ab" * 32),
        ('{"signingSecret": "' + "0f" * 32 + '"}', "0f" * 32),
        ("Cookie: sessionid=q1w2e3r4t5y6u7i8o9p0; csrftoken=zxcvbnmasdfghjkl", "q1w2e3r4t5y6u7i8o9p0"),
        ("Cookie: sessionid=q1w2e3r4t5y6u7i8o9p0; csrftoken=zxcvbnmasdfghjkl", "zxcvbnmasdfghjkl"),
        ("login with password=hunter2-hunter2", "hunter2-hunter2"),
        ("enrollment key tek_Zm9vYmFyYmF6cXV4cXV1eA-_9 refused", "Zm9vYmFyYmF6cXV4cXV1eA-_9"),
    ],
)
def test_credentials_in_a_line_are_redacted(line, secret):
    assert secret not in redact(line)
    assert "[redacted]" in redact(line)


def test_ordinary_lines_are_left_as_they_are():
    for line in (
        "SECRET_KEY must be set when DEBUG is false.",
        "GET /api/twin/state 200 12.5ms",
        "Not ready: database: Unavailable: connection failed.",
        "database unavailable: the token bucket is empty",
    ):
        assert redact(line) == line


@pytest.mark.parametrize("given", ["0123456789abcdef0123456789abcdef", "a1b2c3d4-e5f6-4711-8899-aabbccddeeff", "lb:7"])
def test_a_well_formed_request_id_from_the_proxy_is_kept(given):
    assert request_id_from_header(given) == given


@pytest.mark.parametrize("given", [None, "", "has spaces", "line\nbreak", "x" * 129, '"quoted"', "-leading-dash"])
def test_a_missing_or_malformed_request_id_is_replaced_by_a_fresh_one(given):
    assert re.fullmatch(r"[0-9a-f]{32}", request_id_from_header(given))


def record(message: str, *args: Any, **extra: Any) -> logging.LogRecord:
    made = logging.LogRecord("tests", logging.WARNING, __file__, 1, message, args, None)
    made.__dict__.update(extra)
    RequestIdFilter().filter(made)
    return made


def test_a_json_line_is_one_object_with_the_request_id_and_without_the_request_object():
    token = request_id_var.set("rid-unit-1")
    try:
        line = JsonFormatter("%(levelname)s %(name)s %(message)s %(request_id)s %(threadName)s").format(
            record("Bad Request: %s", "/api/x", status_code=400, request=object())
        )
    finally:
        request_id_var.reset(token)
    assert "\n" not in line
    body = orjson.loads(line)
    assert body["request_id"] == "rid-unit-1"
    assert (body["level"], body["logger"], body["message"], body["status_code"]) == (
        "WARNING",
        "tests",
        "Bad Request: /api/x",
        400,
    )
    assert "request" not in body and "time" in body


def test_a_plain_line_names_the_request_too():
    token = request_id_var.set("rid-unit-2")
    try:
        line = PlainFormatter("%(levelname)s [%(request_id)s] %(message)s").format(record("hello"))
    finally:
        request_id_var.reset(token)
    assert line == "WARNING [rid-unit-2] hello"


# --- a real server ----------------------------------------------------------------------

METRICS_TOKEN = "metrics-token-0b1c2d3e4f5a6b7c8d9e"
PASSWORD = "a-long-password-Zq9x"
QUERY_SECRET = "query-secret-5e6f7a8b9c0d"


def request(url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None, opener=None):
    """Status, headers and body of a request, whatever its status."""
    call = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data is not None else "GET")
    try:
        with (opener or urllib.request.build_opener()).open(call, timeout=15) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


class LiveAgent(SigningAgent):
    """The test suite's signing agent, posting to a live server."""

    def __init__(self, url: str, registration: dict[str, Any]) -> None:
        super().__init__(None, registration)
        self.url = url

    def send(self, body: bytes, headers: dict[str, str]):
        headers = {**headers, "Content-Type": "application/json"}
        return request(f"{self.url}/api/metrics/batch", data=body, headers=headers)


def admin_login(server: LiveServer, username: str) -> tuple[Any, http.cookiejar.CookieJar]:
    """Log in through the admin's own form, as a person would; returns the opener and its cookies."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    status, _, page = request(f"{server.url}/admin/login/", opener=opener)
    assert status == 200
    csrf = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1).decode()
    form = urllib.parse.urlencode(
        {"username": username, "password": PASSWORD, "csrfmiddlewaretoken": csrf, "next": "/admin/"}
    ).encode()
    status, _, _ = request(
        f"{server.url}/admin/login/?next=/admin/",
        data=form,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Referer": f"{server.url}/admin/login/"},
        opener=opener,
    )
    assert status == 200, "the login form did not lead to the admin"
    assert any(cookie.name == "sessionid" for cookie in jar)
    return opener, jar


@pytest.fixture
def json_logging_twin(transactional_db, django_db_serialized_rollback, tmp_path, channel_prefix):
    server = server_start(
        tmp_path,
        CHANNEL_LAYER_PREFIX=channel_prefix,
        LOG_FORMAT="json",
        LOG_LEVEL="DEBUG",
        TWIN_AGENT_AUTH="signed",
        TWIN_PUBLIC_READ="false",
        TWIN_METRICS_TOKEN=METRICS_TOKEN,
        # Plain HTTP here, as in the compose file on localhost: cookies cannot be HTTPS-only.
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
    )
    yield server
    server_stop(server)


@pytest.mark.e2e
def test_json_logs_carry_each_requests_id_across_threads_and_no_secret(json_logging_twin, django_user_model, settings):
    from rest_framework.authtoken.models import Token

    from hosts.services import enrollment_key_create

    server = json_logging_twin
    enrollment_key = enrollment_key_create(name="logs")[1]
    user = django_user_model.objects.create_superuser("operator", password=PASSWORD)
    api_token = Token.objects.create(user=user).key

    # An agent registers with its enrollment key and posts signed batches, one of them malformed.
    status, headers, body = request(
        f"{server.url}/api/hosts/register",
        data=orjson.dumps({"hostname": "logs-01", "platform": "Linux-x86_64", "agent_version": "1.0.0"}),
        headers={
            "Authorization": f"Bearer {enrollment_key}",
            "Content-Type": "application/json",
            "X-Request-ID": "rid-register",
        },
    )
    assert status == 201, body
    assert headers["X-Request-ID"] == "rid-register"
    agent = LiveAgent(server.url, orjson.loads(body))
    good = agent.body([sample_dict("logs-01")])
    assert agent.send(good, {**agent.headers(good), "X-Request-ID": "rid-batch"})[0] == 202
    malformed = b'{"samples": [oops'
    status, headers, _ = agent.send(malformed, {**agent.headers(malformed), "X-Request-ID": "rid-malformed"})
    assert (status, headers["X-Request-ID"]) == (400, "rid-malformed")
    forged = agent.body([sample_dict("logs-01")])
    forged_headers = {**agent.headers(forged), "X-Twin-Signature": "sha256=" + "0" * 64, "X-Request-ID": "rid-forged"}
    assert agent.send(forged, forged_headers)[0] == 401

    # A dashboard reads with its API token (and a secret in the query string, which no line may keep).
    status, _, _ = request(
        f"{server.url}/api/twin/state?token={QUERY_SECRET}",
        headers={"Authorization": f"Token {api_token}", "X-Request-ID": "rid-token"},
    )
    assert status == 200
    assert request(f"{server.url}/api/twin/state", headers={"Authorization": "Token " + "f" * 40})[0] == 401

    # A person logs in through the admin, then reads with the session cookie.
    opener, jar = admin_login(server, "operator")
    assert request(f"{server.url}/api/twin/state", headers={"X-Request-ID": "rid-session"}, opener=opener)[0] == 200

    # Prometheus scrapes with its token; a malformed request id is replaced.
    assert request(f"{server.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})[0] == 200
    _, headers, _ = request(f"{server.url}/healthz", headers={"X-Request-ID": "not a valid id"})
    assert re.fullmatch(r"[0-9a-f]{32}", headers["X-Request-ID"])

    # A browser from a foreign origin is refused by Socket.IO, which logs it.
    async def foreign_browser() -> None:
        client = socketio.AsyncClient(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await client.connect(
                server.url,
                namespaces=["/digital-twin"],
                transports=["polling"],
                headers={"Origin": "http://evil.example", "Cookie": "; ".join(f"{c.name}={c.value}" for c in jar)},
                auth={"token": api_token},
            )
        await client.eio.disconnect(abort=True)

    asyncio.run(foreign_browser())

    server_stop(server)  # every line written and flushed
    text = server.output()
    lines = [orjson.loads(line) for line in text.splitlines() if line.strip()]  # each line is one JSON object
    assert len(lines) >= 10

    def of(request_id: str) -> list[dict[str, Any]]:
        return [line for line in lines if line.get("request_id") == request_id]

    # The malformed batch: the access line on the event loop, and Django's "Bad Request"
    # written from a worker thread, both with the id the proxy gave.
    malformed_lines = of("rid-malformed")
    assert {line["logger"] for line in malformed_lines} >= {"ops.requests", "django.request"}
    bad_request = next(line for line in malformed_lines if line["logger"] == "django.request")
    assert bad_request["message"] == "Bad Request: /api/metrics/batch"
    assert bad_request["thread"] != "MainThread"
    assert of("rid-forged") and of("rid-register") and of("rid-session")
    access = next(line for line in of("rid-token") if line["logger"] == "ops.requests")
    assert (access["method"], access["path"], access["status"]) == ("GET", "/api/twin/state", 200)
    assert access["view"] == "twin-state"
    assert any("is not an accepted origin" in line["message"] for line in lines)

    secrets = {
        "enrollment key": enrollment_key,
        "signing secret": agent.secret,
        "signature": agent.headers(good)["X-Twin-Signature"].removeprefix("sha256="),
        "API token": api_token,
        "password": PASSWORD,
        "metrics token": METRICS_TOKEN,
        "query string": QUERY_SECRET,
        "SECRET_KEY": settings.SECRET_KEY,
        "TWIN_CREDENTIAL_KEY": settings.TWIN_CREDENTIAL_KEY,
        **{f"cookie {cookie.name}": cookie.value for cookie in jar},
    }
    leaked = {name for name, secret in secrets.items() if secret in text}
    assert not leaked, f"found in the logs: {sorted(leaked)}"


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_plain_lines_stay_the_default_and_name_the_request(tmp_path, channel_prefix):
    server = server_start(tmp_path, CHANNEL_LAYER_PREFIX=channel_prefix)
    try:
        assert request(f"{server.url}/healthz", headers={"X-Request-ID": "rid-plain"})[0] == 200
        deadline = time.monotonic() + 5
        while "[rid-plain]" not in server.output() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        server_stop(server)
    line = next(line for line in server.output().splitlines() if "[rid-plain]" in line)
    assert re.search(r" INFO ops\.requests \[rid-plain\] GET /healthz 200 [\d.]+ms$", line), line
    assert not line.startswith("{")
