"""Alert changes are live: a real python-socketio client on /digital-twin gets each as ``alert-update``."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import socketio

from alerts.models import Rule
from alerts.rules import RuleSpec, rule_save
from tests.conftest import sample_dict
from tests.e2e.conftest import LiveServer
from tests.e2e.test_socketio import NAMESPACE, post

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_a_reader_gets_an_alert_opening_and_firing_as_alert_update_events(live_twin: LiveServer):
    Rule.objects.update(enabled=False)
    rule_save(RuleSpec(name="Cpu", field="cpu_load", operator=">", threshold=90.0, severity="critical"))
    updates: list[dict[str, Any]] = []

    async def scenario() -> None:
        client = socketio.AsyncClient(reconnection=False)
        client.on("alert-update", updates.append, namespace=NAMESPACE)
        await client.connect(live_twin.url, namespaces=[NAMESPACE], transports=["websocket"])
        try:
            await post(live_twin.url, [sample_dict("hot-01", cpu_load=97.0)])
            deadline = time.monotonic() + 20  # the evaluator runs every second in the server
            while len(updates) < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        finally:
            await client.eio.disconnect(abort=True)

    asyncio.run(scenario())
    assert [(u["type"], u["rule"], u["hostname"], u["from"], u["to"]) for u in updates[:2]] == [
        ("alert-update", "Cpu", "hot-01", None, "pending"),
        ("alert-update", "Cpu", "hot-01", "pending", "firing"),
    ]
    firing = updates[1]
    assert firing["severity"] == "critical" and firing["causedBy"] is None
    assert firing["values"] == {"value": 97.0, "threshold": 90.0}
    assert isinstance(firing["id"], int) and firing["at"].endswith("Z")
