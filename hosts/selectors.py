"""Reads of the inventory that other apps rely on."""

from __future__ import annotations

from dataclasses import dataclass

from hosts.models import AgentCredential


@dataclass(frozen=True, slots=True)
class AgentIdentity:
    """Who signed a batch: a host's credential, and the hostnames it may report for."""

    hostname: str
    key_id: str
    revoked: bool
    approved: bool
    may_report_for: frozenset[str]

    # DRF treats the authenticated principal as a user; an agent is no user
    # and is never staff, but it did authenticate.
    is_authenticated = True
    is_staff = False


def agent_identity_for_key(*, key_id: str) -> AgentIdentity | None:
    """The identity behind a key id (revoked ones included, so callers can say so), or None."""
    credential = (
        AgentCredential.objects.select_related("host")
        .prefetch_related("host__reports_for")
        .filter(key_id=key_id)
        .first()
    )
    if credential is None:
        return None
    host = credential.host
    return AgentIdentity(
        hostname=host.hostname,
        key_id=credential.key_id,
        revoked=credential.revoked_at is not None,
        approved=host.approved,
        may_report_for=frozenset({host.hostname, *(h.hostname for h in host.reports_for.all())}),
    )
