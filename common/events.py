"""Typed events, and the one place where the sync side hands them to the live side.

Domain code describes what changed as an ``Event`` (a type, an audience and a
payload) and calls ``event_publish_on_commit`` inside its transaction. Events
leave only once the transaction commits, so no listener reads rows that may
still roll back (Zulip's ``send_event_on_commit``). The live side (``twin.live``)
receives them from the Channels layer in every server process and routes them
by type and audience.

Delivery is at most once: the channel layer may drop a message. An event is
therefore a hint that points at committed rows, never the only record of a fact;
whoever receives one re-reads the database (the twin feed rebuilds, a long poll
re-reads its invocations), and the periodic refresh heals a lost one.

Inside a server process, events are handed to the event loop it serves on
(``common.asyncsync.serving_loop``) without waiting and sent at most once per
``PUBLISH_GAP_SECONDS``, all of them in one message: under load most batches
commit while a send is already due, and a request thread that waited for each
send spent a tenth of a small batch on it (bench/analysis.md).

At the server's stop (``events_drain``, called by ``twinsite.serve`` while its
loop still runs) what waits is sent at once and the sends in flight are awaited
for a bounded time; from then on, events are dropped and counted instead of
handed to a loop that will never run them again (a request thread once waited
for such a loop for good, and the process never exited), and the count is
logged.

The long poll's waiters, which these events wake, belong to ``commands.waiters``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections.abc import Iterable
from enum import StrEnum
from typing import Any, NotRequired, TypedDict

from channels.layers import get_channel_layer
from django.db import transaction

from common.asyncsync import coroutine_run, serving_loop, serving_loop_stopped

logger = logging.getLogger(__name__)

# The Channels group every server process's listener joins, and the message type carrying events.
EVENTS_GROUP = "twin"
EVENTS_MESSAGE = "twin.events"
# Listeners push at most a few times a second, so a send every 50 ms per
# process is all they can use.
PUBLISH_GAP_SECONDS = 0.05
# A hosts-changed event names at most this many hosts; beyond, it says "any
# host" (hostnames None). Listeners rebuild from the database either way, and a
# change touching the whole fleet must not become a megabyte message.
HOSTNAMES_MAX = 1000


class EventType(StrEnum):
    """What happened. Each type has one payload shape, documented in docs/api.md."""

    # Inventory or measurements of these hosts changed: {"hostnames": [...] | None (any host)}.
    HOSTS_CHANGED = "hosts.changed"
    # A host's status changed: {"hostname", "from", "to", "at", "cause"}.
    HOST_STATUS = "host.status"
    # A command invocation changed state: the command-update document.
    COMMAND_UPDATED = "command.updated"
    # Work is waiting for one host's agent: {"hostname"}.
    INVOCATION_AVAILABLE = "invocation.available"
    # An alert changed state: {"id", "rule", "hostname", "rack", "severity", "from", "to", "at", "values", "causedBy"}.
    ALERT_UPDATED = "alert.updated"


class Audience(StrEnum):
    """Who may receive an event."""

    READERS = "readers"  # everyone allowed to read the twin
    STAFF = "staff"  # operators: on Socket.IO, readers holding the event's REST permission (twin.audiences)
    AGENT = "agent"  # one host's agent, named by the event's ``host``


class Event(TypedDict):
    """An event envelope: what happened, to whom it may be told, and the facts."""

    type: str
    audience: str
    payload: dict[str, Any]
    host: NotRequired[str]


def hosts_changed(*, hostnames: Iterable[str] | None) -> Event:
    """Inventory or latest values of these hosts changed (``None``: any host may have)."""
    names = None if hostnames is None else sorted(set(hostnames))
    if names is not None and len(names) > HOSTNAMES_MAX:
        names = None
    return {"type": EventType.HOSTS_CHANGED, "audience": Audience.READERS, "payload": {"hostnames": names}}


def host_status_changed(*, hostname: str, from_status: str | None, to_status: str, at: str, cause: str) -> Event:
    """A host's status changed (``from`` is None for a host's first status), told to every reader."""
    payload = {"hostname": hostname, "from": from_status, "to": to_status, "at": at, "cause": cause}
    return {"type": EventType.HOST_STATUS, "audience": Audience.READERS, "payload": payload}


def alert_updated(
    *,
    alert_id: int,
    rule: str,
    hostname: str | None,
    severity: str,
    from_state: str | None,
    to_state: str,
    at: str,
    values: dict[str, Any],
    caused_by: dict[str, Any] | None = None,
    rack: str | None = None,
) -> Event:
    """An alert of ``rule`` on ``hostname`` moved ``from`` (None: it opened) ``to`` a state; told to every reader.

    ``rack``: the host's rack; a rack's alert (its power) has the rack and no hostname (None).

    ``caused_by``: ``{"id", "rule", "hostname"}`` of the failed switch's alert this one hangs under, or None.
    """
    payload = {
        "id": alert_id,
        "rule": rule,
        "hostname": hostname,
        "rack": rack,
        "severity": severity,
        "from": from_state,
        "to": to_state,
        "at": at,
        "values": values,
        "causedBy": caused_by,
    }
    return {"type": EventType.ALERT_UPDATED, "audience": Audience.READERS, "payload": payload}


def events_merge(events: list[Event]) -> list[Event]:
    """Coalesce hosts-changed events into one (first), keep every other event in order."""
    changed: set[str] | None = set()
    seen_change = False
    others: list[Event] = []
    for event in events:
        if event["type"] != EventType.HOSTS_CHANGED:
            others.append(event)
            continue
        seen_change = True
        names = event["payload"]["hostnames"]
        if names is None or changed is None:
            changed = None
        else:
            changed.update(names)
    if not seen_change:
        return others
    return [hosts_changed(hostnames=changed), *others]


async def _group_send(events: list[Event]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        # sent_at (wall clock): the listeners' measure of the channel layer's lag (twin.live.instruments).
        await layer.group_send(EVENTS_GROUP, {"type": EVENTS_MESSAGE, "events": events, "sent_at": time.time()})
    except Exception:
        # The change is committed; a lost event costs one refresh interval,
        # so failing the request that made it would be worse.
        logger.warning("could not publish twin events; listeners will pick them up on refresh", exc_info=True)


class _Stopping:
    """Once the server stops (``events_drain``): events no loop will send are dropped, and counted here."""

    def __init__(self) -> None:
        # The loop that drained: closed until it is (a test's loop, ending; a new one serves after it).
        self.drained: weakref.ReferenceType[asyncio.AbstractEventLoop] | None = None
        self.dropped = 0
        self._lock = threading.Lock()

    @property
    def closed(self) -> bool:
        loop = self.drained() if self.drained is not None else None
        return loop is not None and not loop.is_closed()

    def drop(self, count: int) -> None:
        with self._lock:
            first = self.dropped == 0
            self.dropped += count
        if first:
            logger.warning(
                "the server is stopping: twin events can no longer be published and are dropped "
                "(listeners catch up at their next refresh)"
            )


_stopping = _Stopping()


class _LoopPublisher:
    """Collects this process's events on its event loop: at most one send per gap, none lost.

    ``add`` runs on the loop after a commit. If a send is already due, the
    events join it; otherwise one is scheduled. The queue is taken before
    sending, so events added during a send schedule another.
    """

    def __init__(self) -> None:
        self._queue: list[Event] = []
        self._last_sent = -PUBLISH_GAP_SECONDS
        # The loop keeps only weak references to tasks: a send in flight must not be collected.
        # Each send in flight with how many events it carries (counted as dropped if a stop cuts it).
        self._sending: dict[asyncio.Task[None], int] = {}

    def add(self, events: list[Event]) -> None:
        if _stopping.closed:
            _stopping.drop(len(events))
            return
        due = bool(self._queue)
        self._queue.extend(events)
        if due or not self._queue:
            return
        delay = max(0.0, self._last_sent + PUBLISH_GAP_SECONDS - time.monotonic())
        asyncio.get_running_loop().call_later(delay, self._send)

    def _send(self) -> None:
        if not self._queue:
            return  # sent early by a drain
        events, self._queue = events_merge(self._queue), []
        self._last_sent = time.monotonic()
        task = asyncio.get_running_loop().create_task(_group_send(events))
        self._sending[task] = len(events)
        task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sending.pop(task, None)

    async def drain(self, *, timeout: float) -> tuple[int, int]:
        """Send what waits now, wait up to ``timeout`` for the sends in flight; return (sent, cut) events."""
        self._send()
        in_flight = dict(self._sending)
        if not in_flight:
            return 0, 0
        _, cut = await asyncio.wait(in_flight, timeout=timeout)
        for task in cut:
            task.cancel()
        lost = sum(in_flight[task] for task in cut)
        return sum(in_flight.values()) - lost, lost


_publishers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopPublisher] = weakref.WeakKeyDictionary()


async def events_drain(*, timeout: float) -> tuple[int, int]:
    """At the server's stop, on its loop: send what waits, then drop (and count) every later event.

    Returns how many events left in the drain and how many were dropped so far
    (cut sends included). Bounded by ``timeout``: a channel layer that does not
    answer costs its events, not the stop.
    """
    loop = asyncio.get_running_loop()
    publisher = _publishers.get(loop)
    sent, cut = (0, 0) if publisher is None else await publisher.drain(timeout=timeout)
    _stopping.drained = weakref.ref(loop)
    if cut:
        _stopping.drop(cut)
    return sent, _stopping.dropped


def events_dropped() -> int:
    """Events dropped because the server was stopping (``events_drain``)."""
    return _stopping.dropped


def _publish(events: list[Event]) -> None:
    """Hand events to the serving loop's publisher without waiting, or send them now outside a server.

    One call's events stay together: a transaction's events (thousands of
    status changes when a rack loses power) leave in one message. Once the
    server stopped (``events_drain``) they are dropped and counted: its loop
    will not run again.
    """
    if _stopping.closed:
        _stopping.drop(len(events))
        return
    loop = serving_loop()
    if loop is not None:
        publisher = _publishers.get(loop)
        if publisher is None:
            publisher = _publishers.setdefault(loop, _LoopPublisher())
        try:
            loop.call_soon_threadsafe(publisher.add, events)
            return
        except RuntimeError:
            pass  # the loop closed meanwhile (the server is stopping): send them from here
    if serving_loop_stopped():
        # A server stopped without its drain (not started by twinsite.serve): nothing will send them.
        _stopping.drop(len(events))
        return
    # A management command, a job or a test without a server.
    coroutine_run(_group_send, events)


def event_publish(event: Event) -> None:
    """Send an event to every server process now (at most once delivery); prefer ``event_publish_on_commit``."""
    _publish([event])


def event_publish_on_commit(event: Event) -> None:
    """Publish an event once the current transaction commits (at once outside a transaction)."""
    transaction.on_commit(lambda: event_publish(event))


def events_publish_on_commit(events: list[Event]) -> None:
    """Publish several events once the transaction commits, in one message.

    A job records thousands of status changes when a rack loses power; one
    channel-layer send per event would hold the job for seconds.
    """
    if not events:
        return
    batch = list(events)
    transaction.on_commit(lambda: _publish(batch))
