"""Reads of the collectors app: a collector's token."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from collectors.models import CollectorToken

TOKEN_PREFIX = "tct_"


def collector_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class CollectorIdentity:
    """Who wrote a remote-write request: a collector token's name and state."""

    token_id: int
    name: str
    revoked: bool

    # DRF treats the authenticated principal as a user; a collector is none and never staff.
    is_authenticated = True
    is_staff = False


def collector_identity_for_token(token: str) -> CollectorIdentity | None:
    """The collector a bearer token names, revoked or not; None for a token nobody was given."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = (
        CollectorToken.objects.filter(token_hash=collector_token_hash(token))
        .values_list("pk", "name", "revoked_at")
        .first()
    )
    if row is None:
        return None
    return CollectorIdentity(token_id=row[0], name=row[1], revoked=row[2] is not None)
