"""Helpers of the alerts tests: rules made through the real service, the evaluator at chosen times."""

from __future__ import annotations

import base64
import threading
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest
from django.utils import timezone

from alerts.evaluation import alerts_evaluate
from alerts.models import Receiver, Rule
from alerts.rules import RuleSpec, rule_save


@pytest.fixture
def only_rules(db):
    """Disable the shipped rules and make the given ones (RuleSpec keyword dicts)."""

    def make(*specs: dict[str, Any]) -> list[Rule]:
        Rule.objects.update(enabled=False)
        return [rule_save(RuleSpec(**spec)) for spec in specs]

    return make


class Clock:
    """The evaluator run at a moment that moves forward in the test."""

    def __init__(self) -> None:
        self.now: datetime = timezone.now()

    def evaluate(self, after_seconds: float = 0.0):
        self.now += timedelta(seconds=after_seconds)
        return alerts_evaluate(now=self.now)


@pytest.fixture
def clock() -> Clock:
    return Clock()


SECRET = "whsec_" + base64.b64encode(b"a shared secret of the receiver").decode()


class Hook:
    """A webhook receiver on a loopback port: records each request; answers ``status`` (a list: one per request)."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(hook.statuses.pop(0) if hook.statuses else 204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def bodies(self) -> list[dict]:
        return [orjson.loads(body) for _, body in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook(settings):
    settings.TWIN_ALERTS_ALLOW_PRIVATE_RECEIVERS = True
    receiver = Hook()
    Receiver.objects.create(name="hook", url=receiver.url, secret=SECRET)
    yield receiver
    receiver.close()
