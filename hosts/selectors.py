"""Reads of the inventory that other apps rely on."""

from __future__ import annotations

from dataclasses import dataclass

from hosts.models import AgentCredential, Host


@dataclass(frozen=True, slots=True)
class AgentIdentity:
    """Who signed a batch: a host's credential and its state."""

    host_id: int
    hostname: str
    key_id: str
    revoked: bool
    approved: bool

    # DRF treats the authenticated principal as a user; an agent is no user
    # and is never staff, but it did authenticate.
    is_authenticated = True
    is_staff = False


def agent_identity_for_key(*, key_id: str) -> AgentIdentity | None:
    """The identity behind a key id (revoked ones included, so callers can say so), or None."""
    row = (
        AgentCredential.objects.filter(key_id=key_id)
        .values_list("host_id", "host__hostname", "revoked_at", "host__approved")
        .first()
    )
    if row is None:
        return None
    host_id, hostname, revoked_at, approved = row
    return AgentIdentity(
        host_id=host_id, hostname=hostname, key_id=key_id, revoked=revoked_at is not None, approved=approved
    )


def hosts_reported_for(*, host_id: int) -> set[str]:
    """The hostnames an admin allowed this host's agent to report for, besides its own."""
    return set(
        Host.reports_for.through.objects.filter(from_host_id=host_id).values_list("to_host__hostname", flat=True)
    )
