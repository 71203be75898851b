"""Long polls waiting in this process for work for one host's agent, and what wakes them.

Each waiting poll holds a future of the event loop, keyed by hostname. The live
side's dispatcher (``twin.live.dispatch``) receives the ``invocation.available``
events of every process and hands each to ``agent_events_deliver``, which wakes
this process's polls for that host. A wake-up only says "look again": the poll
re-reads the database, which holds the truth.
"""

from __future__ import annotations

import asyncio

from common.events import Event

# Futures of the requests of this process waiting for work for a host.
_agent_waiters: dict[str, set[asyncio.Future[None]]] = {}


class AgentEventListener:
    """Hears events for one host's agent in this process from the moment it is entered.

    A long poll enters it *before* it looks at the database, so an event
    published between that look and the wait still wakes it (a lost wake-up
    would cost the agent a whole wait).
    """

    def __init__(self, host: str) -> None:
        self.host = host
        self._future: asyncio.Future[None] | None = None

    def __enter__(self) -> AgentEventListener:
        self._listen()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def _listen(self) -> None:
        self._future = asyncio.get_running_loop().create_future()
        _agent_waiters.setdefault(self.host, set()).add(self._future)

    def _stop(self) -> None:
        waiters = _agent_waiters.get(self.host)
        if waiters is not None and self._future is not None:
            waiters.discard(self._future)
            if not waiters:
                _agent_waiters.pop(self.host, None)

    async def wait(self, timeout: float) -> bool:
        """Wait for an event heard since entering (or since the last wake-up); False when ``timeout`` passes first.

        After a wake-up it listens again at once, before the caller's next look.
        """
        assert self._future is not None, "enter the listener first"
        done, _ = await asyncio.wait({self._future}, timeout=max(0.0, timeout))
        if not done:
            return False
        self._stop()
        self._listen()
        return True


async def agent_event_wait(*, host: str, timeout: float) -> bool:
    """Wait until an event for ``host``'s agent arrives in this process; False when ``timeout`` passes first.

    A wake-up only says "look again": the caller re-reads the database, which
    holds the truth (an event may be lost, or arrive before the reader looks;
    ``AgentEventListener`` hears it even then).
    """
    with AgentEventListener(host) as listener:
        return await listener.wait(timeout)


def agent_events_deliver(event: Event) -> None:
    """Wake every request of this process waiting for the event's host (run on the event loop)."""
    for future in _agent_waiters.get(event.get("host", ""), ()):
        if not future.done():
            future.set_result(None)
