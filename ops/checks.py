"""What ``/readyz`` checks, as django-health-check checks.

Each check raises ``ServiceUnavailable`` with a sentence an operator can act
on; django-health-check runs them concurrently, each within its timeout, and
turns anything unexpected into a logged "unknown error" rather than a 500.
Sync work runs through ``sync_to_async`` rather than the library's executor,
so the request's context (its id in the logs) goes along into the thread.
"""

from __future__ import annotations

import dataclasses
import datetime
import uuid
from typing import ClassVar

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.core.cache import cache
from django.db import connections
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone
from health_check.base import HealthCheck
from health_check.checks import Database
from health_check.exceptions import ServiceUnavailable
from psycopg_pool import PoolTimeout

from jobs.selectors import jobs_health
from twin.live.listener import LISTENER

# A probe answers well within a load balancer's patience (compose waits 5 s).
PROBE_TIMEOUT = datetime.timedelta(seconds=3)


@dataclasses.dataclass
class DatabaseReachable(Database):
    """The database answers ``SELECT 1`` through the same pool the requests use."""

    name: ClassVar[str] = "database"
    timeout = PROBE_TIMEOUT

    async def run(self) -> None:
        try:
            await sync_to_async(super().run, thread_sensitive=False)()
        except PoolTimeout as exc:
            raise ServiceUnavailable("No database connection could be had from the pool in time.") from exc


@dataclasses.dataclass
class MigrationsApplied(HealthCheck):
    """Every migration this code knows is applied: a replica of a newer release waits for ``migrate``."""

    name: ClassVar[str] = "migrations"
    timeout = PROBE_TIMEOUT
    alias: str = "default"

    def pending(self) -> int:
        connection = connections[self.alias]
        with connection.temporary_connection():
            executor = MigrationExecutor(connection)
            return len(executor.migration_plan(executor.loader.graph.leaf_nodes()))

    async def run(self) -> None:
        try:
            pending = await sync_to_async(self.pending, thread_sensitive=False)()
        except PoolTimeout as exc:
            raise ServiceUnavailable("No database connection could be had from the pool in time.") from exc
        except Exception as exc:
            # Unreachable database: the database check says so; this one says it could not tell.
            raise ServiceUnavailable(f"Could not read the applied migrations ({type(exc).__name__}).") from exc
        if pending:
            raise ServiceUnavailable(f"{pending} migration(s) not applied: run `python manage.py migrate`.")


@dataclasses.dataclass
class ChannelLayerReachable(HealthCheck):
    """A message goes through the channel layer and comes back (Redis when several processes share it).

    The message is sent first and received after, on a channel of its own, so
    the receive finds it waiting and is never cancelled midway (which would
    lose messages with channels-redis).
    """

    name: ClassVar[str] = "channel_layer"
    timeout = PROBE_TIMEOUT

    async def run(self) -> None:
        layer = get_channel_layer()
        if layer is None:
            raise ServiceUnavailable("No channel layer is configured.")
        channel = f"twin-readyz.{uuid.uuid4().hex}"
        token = uuid.uuid4().hex
        try:
            await layer.send(channel, {"type": "readyz.probe", "token": token})
            message = await layer.receive(channel)
        except Exception as exc:
            raise ServiceUnavailable(f"The channel layer cannot be reached ({type(exc).__name__}).") from exc
        if message.get("token") != token:
            raise ServiceUnavailable("The channel layer returned another message than the one sent.")
        if LISTENER.in_group is False:
            # Redis is back but the listener has not rejoined yet (twin.live.listener):
            # this process's dashboards miss other processes' changes meanwhile.
            raise ServiceUnavailable(
                f"The channel layer answers, but {LISTENER.detail or 'the events listener is not in its group'}."
            )


@dataclasses.dataclass
class CacheReachable(HealthCheck):
    """The shared cache (Redis when configured: the rate limits' counters) takes a write and reads it back.

    Ingest goes on without it, each process counting its own limits
    (``common.throttling``); this check says that it is missing.
    """

    name: ClassVar[str] = "cache"
    timeout = PROBE_TIMEOUT

    def probe(self, key: str, token: str) -> object:
        cache.set(key, token, timeout=10)
        return cache.get(key)

    async def run(self) -> None:
        key, token = f"readyz:{uuid.uuid4().hex}", uuid.uuid4().hex
        try:
            found = await sync_to_async(self.probe, thread_sensitive=False)(key, token)
        except Exception as exc:
            raise ServiceUnavailable(
                f"The shared cache (Redis) cannot be reached ({type(exc).__name__}); "
                "rate limits are counted per process meanwhile."
            ) from exc
        if found != token:
            raise ServiceUnavailable("The shared cache returned another value than the one written.")


@dataclasses.dataclass
class JobsNotLagging(HealthCheck):
    """Every background job ran on time: none overdue by more than its allowance (jobs.selectors)."""

    name: ClassVar[str] = "jobs"
    timeout = PROBE_TIMEOUT

    def lagging(self) -> list[str]:
        # A worker thread's connection goes back to the pool when the probe is done.
        with connections["default"].temporary_connection():
            health = jobs_health(now=timezone.now())
        return [f"{job.name} {job.lag_seconds:.0f} s late" for job in health if job.lagging]

    async def run(self) -> None:
        try:
            late = await sync_to_async(self.lagging, thread_sensitive=False)()
        except Exception as exc:
            raise ServiceUnavailable(f"Could not read the jobs' last runs ({type(exc).__name__}).") from exc
        if late:
            raise ServiceUnavailable("Background jobs are lagging: " + ", ".join(late) + ".")


# What /readyz runs.
READINESS_CHECKS: tuple[type[HealthCheck], ...] = (
    DatabaseReachable,
    MigrationsApplied,
    ChannelLayerReachable,
    CacheReachable,
    JobsNotLagging,
)
