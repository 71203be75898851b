"""commands.waiters: a long poll hears its host's events, even one that comes between its look and its wait."""

from __future__ import annotations

import asyncio

from commands.waiters import AgentEventListener, agent_event_wait, agent_events_deliver
from common.events import Audience, EventType


def test_an_agent_event_wakes_only_the_requests_waiting_for_that_host():
    async def main() -> tuple[bool, bool]:
        waiting = asyncio.ensure_future(agent_event_wait(host="titan-01", timeout=2))
        other = asyncio.ensure_future(agent_event_wait(host="titan-02", timeout=0.2))
        await asyncio.sleep(0.01)
        agent_events_deliver({"type": EventType.INVOCATION_AVAILABLE, "audience": Audience.AGENT, "host": "titan-01",
                              "payload": {"hostname": "titan-01"}})  # fmt: skip
        return await waiting, await other

    assert asyncio.run(main()) == (True, False)


def test_a_listener_hears_an_event_that_arrives_between_its_look_and_its_wait():
    async def main() -> tuple[bool, bool]:
        with AgentEventListener("titan-01") as listener:
            # The long poll looked at the database here and found nothing; the event comes before it waits.
            agent_events_deliver({"type": EventType.INVOCATION_AVAILABLE, "audience": Audience.AGENT,
                                  "host": "titan-01", "payload": {"hostname": "titan-01"}})  # fmt: skip
            woken = await listener.wait(5)
            # Listening again at once: a quiet spell afterwards is a timeout, not a stale wake-up.
            quiet = await listener.wait(0.05)
        return woken, quiet

    assert asyncio.run(main()) == (True, False)
