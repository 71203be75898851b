"""A small fake of the twin's agent-facing endpoints, for the command lifecycle that the server has not yet.

Just what the agent's side of /work/briefs/commands-protocol.md needs:
registration, batches (answered with the host's pending invocations), the
long poll and the result endpoint. Every signed request is checked as the
real server checks it, so a wrongly signed request fails here too. Invocations
stay handed out ("dispatched") until the agent acknowledges them, as the
protocol says; ``cancelled`` ones answer 409.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

RESULT_RE = re.compile(r"^/api/commands/(\d+)/result$")


@dataclass
class FakeInvocation:
    host: str
    command_id: int
    action: str
    args: dict[str, Any]
    timeout_seconds: float = 60
    state: str = "queued"
    posts: list[dict[str, Any]] = field(default_factory=list)

    def wire(self) -> dict[str, Any]:
        return {
            "commandId": self.command_id,
            "action": self.action,
            "args": self.args,
            "timeoutSeconds": self.timeout_seconds,
            "issuedAt": "2026-01-01T00:00:00.000Z",
        }


class FakeTwin:
    """Start with ``FakeTwin().start()``; ``url``, ``invocation_add``, ``batches``, ``stop``."""

    def __init__(self, *, long_poll: bool = True, heartbeat: int = 1) -> None:
        self.long_poll = long_poll
        self.heartbeat = heartbeat
        self.secrets: dict[str, tuple[str, str]] = {}  # key id -> (hostname, secret)
        self.batches: list[dict[str, Any]] = []  # decoded bodies, with "host"
        self.invocations: dict[tuple[str, int], FakeInvocation] = {}
        self.polls: list[str] = []
        self.result_status = 200  # set to 503 to make result posts fail
        self.batch_status = 202  # set to 503 to make batches wait (an outage of ingestion only)
        self.lock = threading.Condition()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        # An agent killed or stopped mid long poll leaves a broken pipe: not the fake's concern.
        self.server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeTwin:
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def credential(self, hostname: str) -> dict[str, Any]:
        key_id, secret = "tak_" + secrets.token_hex(12), secrets.token_hex(32)
        self.secrets[key_id] = (hostname, secret)
        return {
            "hostname": hostname,
            "keyId": key_id,
            "signingSecret": secret,
            "approved": True,
            "heartbeatIntervalSeconds": self.heartbeat,
            "signatureWindowSeconds": 300.0,
            "twinId": "twin-fake",
            "serverTime": "2026-01-01T00:00:00.000Z",
        }

    def invocation_add(self, host: str, command_id: int, action: str, args: dict[str, Any] | None = None, **kw: Any):
        with self.lock:
            invocation = FakeInvocation(host, command_id, action, args or {}, **kw)
            self.invocations[(host, command_id)] = invocation
            self.lock.notify_all()
            return invocation

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self.lock:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.lock.wait(remaining)
            return True

    def _handed_out(self, host: str) -> list[dict[str, Any]]:
        """Queued and dispatched invocations of ``host``: handed out again until acknowledged."""
        out = []
        for invocation in self.invocations.values():
            if invocation.host == host and invocation.state in ("queued", "dispatched"):
                invocation.state = "dispatched"
                out.append(invocation.wire())
        return out

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        twin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as daphne: clients reuse their connections
            # One write per answer, sent at once: headers and body written apart meet the client's
            # delayed ACK (Nagle), 40 ms an answer on a kept-alive connection.
            wbufsize = 64 * 1024
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _signed_host(self, signed: bytes) -> str | None:
                key_id = self.headers.get("X-Twin-Key-Id", "")
                stamp = self.headers.get("X-Twin-Timestamp", "")
                if key_id not in twin.secrets:
                    return None
                host, secret = twin.secrets[key_id]
                expected = (
                    "sha256=" + hmac.new(secret.encode(), stamp.encode() + b"." + signed, hashlib.sha256).hexdigest()
                )
                if not hmac.compare_digest(expected, self.headers.get("X-Twin-Signature", "")):
                    return None
                return host

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                gzipped = self.headers.get("Content-Encoding") == "gzip"
                body = gzip.decompress(raw) if gzipped and self.path == "/api/metrics/batch" else raw
                if self.path == "/api/hosts/register":
                    self._answer(201, twin.credential(json.loads(body)["hostname"]))
                    return
                host = self._signed_host(raw)  # the bytes as sent
                if host is None:
                    self._answer(401, {"error": "bad_signature", "detail": "fake: signature does not match"})
                    return
                if self.path == "/api/metrics/batch" and twin.batch_status != 202:
                    self._answer(twin.batch_status, {"error": "unavailable", "detail": "fake ingestion outage"})
                    return
                if self.path == "/api/metrics/batch":
                    batch = json.loads(body)
                    with twin.lock:
                        twin.batches.append({**batch, "host": host})
                        answer: dict[str, Any] = {
                            "accepted": len(batch["samples"]),
                            "receivedAt": "2026-01-01T00:00:00Z",
                        }
                        handed = twin._handed_out(host)
                        if handed:
                            answer["invocations"] = handed
                        twin.lock.notify_all()
                    self._answer(202, answer)
                    return
                match = RESULT_RE.match(self.path)
                if match:
                    self._result(host, int(match.group(1)), json.loads(body))
                    return
                self._answer(404, {"error": "not_found", "detail": self.path})

            def _result(self, host: str, command_id: int, result: dict[str, Any]) -> None:
                with twin.lock:
                    invocation = twin.invocations.get((host, command_id))
                    if invocation is None:
                        self._answer(404, {"error": "not_found", "detail": "no such invocation"})
                        return
                    if twin.result_status != 200:
                        self._answer(twin.result_status, {"error": "unavailable", "detail": "fake outage"})
                        return
                    if invocation.state in ("succeeded", "failed", "cancelled", "timed_out"):
                        self._answer(
                            409, {"error": "invalid_transition", "detail": "finished", "state": invocation.state}
                        )
                        return
                    invocation.posts.append(result)
                    invocation.state = result["status"]
                    twin.lock.notify_all()
                self._answer(200, {"host": host, "state": invocation.state})

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path == "/api/health":
                    self._answer(200, {"status": "ok"})
                    return
                if parts.path != "/api/commands/pending" or not twin.long_poll:
                    self._answer(404, {"error": "not_found", "detail": self.path})
                    return
                host = self._signed_host(b"GET " + self.path.encode())
                if host is None:
                    self._answer(401, {"error": "bad_signature", "detail": "fake: GET signature does not match"})
                    return
                wait = min(float(parse_qs(parts.query).get("wait", ["25"])[0]), 2.0)
                with twin.lock:
                    twin.polls.append(self.path)
                    twin.lock.wait_for(lambda: twin._waiting(host), timeout=wait)
                    handed = twin._handed_out(host)
                self._answer(200, {"invocations": handed})

        return Handler

    def _waiting(self, host: str) -> bool:
        return any(i.host == host and i.state == "queued" for i in self.invocations.values())
