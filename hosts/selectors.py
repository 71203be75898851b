"""Reads of the inventory that other apps rely on."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from common.sql import sql_in
from hosts.models import AgentCredential, Host, Link


@dataclass(frozen=True, slots=True)
class AgentIdentity:
    """Who signed a batch: a host's credential and its state."""

    host_id: int
    hostname: str
    key_id: str
    revoked: bool
    approved: bool
    virtual: bool = False

    # DRF treats the authenticated principal as a user; an agent is no user
    # and is never staff, but it did authenticate.
    is_authenticated = True
    is_staff = False


def agent_identity_for_key(*, key_id: str) -> AgentIdentity | None:
    """The identity behind a key id (revoked ones included, so callers can say so), or None.

    Plain SQL: it runs for every signed batch, and building the ORM query cost
    more than running it (bench/analysis.md).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT c.host_id, h.hostname, c.revoked_at IS NOT NULL, h.approved, h.is_virtual "
            f"FROM {AgentCredential._meta.db_table} c JOIN {Host._meta.db_table} h ON h.id = c.host_id "
            "WHERE c.key_id = %s",
            [key_id],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    host_id, hostname, revoked, approved, virtual = row
    return AgentIdentity(
        host_id=host_id,
        hostname=hostname,
        key_id=key_id,
        revoked=bool(revoked),
        approved=bool(approved),
        virtual=bool(virtual),
    )


def host_id_by_hostname(*, hostname: str) -> int | None:
    """The id of the host named ``hostname``, or None when there is none."""
    return Host.objects.filter(hostname=hostname).values_list("pk", flat=True).first()


def hostnames_virtual(*, hostnames: Iterable[str]) -> set[str]:
    """Those of these hostnames that are virtual nodes (a switch): no agent reports for them unless granted."""
    names = sorted(set(hostnames))
    if not names:
        return set()
    condition, params = sql_in("hostname", names)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT hostname FROM {Host._meta.db_table} WHERE is_virtual AND {condition}", params)
        return {row[0] for row in cursor.fetchall()}


def hosts_reported_for(*, host_id: int) -> set[str]:
    """The hostnames an admin allowed this host's agent to report for, besides its own."""
    return set(
        Host.reports_for.through.objects.filter(from_host_id=host_id).values_list("to_host__hostname", flat=True)
    )


def link_rows(*, created_by: datetime | None = None) -> list[tuple[int, int, float, int | None, int | None]]:
    """Every link as (source id, target id, capacity in Gbit/s, source interface id, target interface id).

    In a stable order; an end that names no interface has None.
    ``created_by``: only the links that existed then (the twin at a past time).
    """
    links = Link.objects.order_by("source_id", "target_id")
    if created_by is not None:
        links = links.filter(created_at__lte=created_by)
    return list(
        links.values_list("source_id", "target_id", "capacity_gbps", "source_interface_id", "target_interface_id")
    )


def link_capacities() -> dict[str, float]:
    """Each link's line rate in Gbit/s by its document id (``source::target``)."""
    links = Link.objects.values_list("source__hostname", "target__hostname", "capacity_gbps")
    return {f"{source}::{target}": capacity for source, target, capacity in links}


def hostnames_marked_failed() -> set[str]:
    """The nodes an admin marked failed (``Host.failed``): usually none."""
    return set(Host.objects.filter(failed=True).values_list("hostname", flat=True))
