"""Agents authenticate with an HMAC signature over the timestamp and the raw body (or the request line)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from django.conf import settings
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed, PermissionDenied
from rest_framework.request import Request

from common.http import json_body
from hosts.credentials import (
    HEADER_KEY_ID,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    KEY_ID_PREFIX,
    signature_matches,
    signing_secret_for,
)
from hosts.selectors import AgentIdentity, agent_identity_for_key

# Unix time as canonical decimal digits: Python's ``int()`` also reads
# "1_795_957_272", "+1795957272", " 1795957272" and digits of other scripts,
# so one signed moment had many spellings. No leading zero, at most 12 digits.
TIMESTAMP_RE = re.compile(r"0|[1-9][0-9]{0,11}")
# What ``hosts.credentials.key_id_generate`` issues; anything else is unknown without a query.
KEY_ID_RE = re.compile(rf"{KEY_ID_PREFIX}[0-9a-f]{{24}}")

# Requests without a body sign their request line instead: "<METHOD> <path?query>".
BODILESS_METHODS = frozenset({"GET", "HEAD"})


def request_line_payload(*, method: str, full_path: str) -> bytes:
    """What a request without a body signs after ``"<timestamp>."``: e.g. ``GET /api/commands/pending?wait=25``."""
    return f"{method} {full_path}".encode()


def agent_signature_check(
    *, key_id: str, timestamp: str, signature: str, payload: Callable[[], bytes]
) -> AgentIdentity | None:
    """The agent identity a request's three signature headers prove, or None when it has none of them.

    ``payload`` gives the signed bytes (the body, or the request line); it is
    only called once the cheaper checks passed. Raises DRF's
    ``AuthenticationFailed`` or ``PermissionDenied`` (codes in docs/api.md).
    Checks go from cheapest to dearest, and the credential's state (revoked,
    pending) is only told to a caller who proved it holds the secret.
    """
    if not (key_id or timestamp or signature):
        return None
    if not (key_id and timestamp and signature):
        raise AuthenticationFailed(
            f"A signed request needs all of {HEADER_KEY_ID}, {HEADER_TIMESTAMP} and {HEADER_SIGNATURE}.",
            code="incomplete_signature",
        )
    if TIMESTAMP_RE.fullmatch(timestamp) is None:
        raise AuthenticationFailed(
            f"{HEADER_TIMESTAMP} must be Unix time in whole seconds, as decimal digits only.",
            code="bad_timestamp",
        )
    signed_at = int(timestamp)
    window = settings.TWIN_SIGNATURE_WINDOW_SECONDS
    if abs(time.time() - signed_at) > window:
        raise AuthenticationFailed(
            f"{HEADER_TIMESTAMP} is more than {window:g} s from the server's clock; check the agent's clock.",
            code="stale_timestamp",
        )
    identity = agent_identity_for_key(key_id=key_id) if KEY_ID_RE.fullmatch(key_id) else None
    if identity is None:
        raise AuthenticationFailed("Unknown key id; register the host again.", code="unknown_key")
    if not signature_matches(
        secret=signing_secret_for(key_id), timestamp=timestamp, body=payload(), signature=signature
    ):
        raise AuthenticationFailed(
            "The signature does not match the timestamp and body (or, without a body, the request line); "
            "sign the exact bytes sent.",
            code="bad_signature",
        )
    if identity.revoked:
        raise AuthenticationFailed("This credential was revoked or rotated; register the host again.", code="revoked")
    if identity.virtual:
        # Registration never gives a virtual node a credential, and marking a host
        # virtual revokes its credentials; this holds even if the database was edited.
        raise PermissionDenied("A virtual node has no agent of its own.", code="virtual_host")
    if not identity.approved:
        raise PermissionDenied("The host is waiting for an admin's approval.", code="pending_approval")
    return identity


class AgentSignatureAuthentication(BaseAuthentication):
    """Checks ``X-Twin-Key-Id``, ``X-Twin-Timestamp`` and ``X-Twin-Signature`` (``agent_signature_check``).

    A request with none of the headers is anonymous (the view decides whether
    that is allowed); one with some of them must be right in every respect.
    """

    def authenticate(self, request: Request) -> tuple[AgentIdentity, AgentIdentity] | None:
        if request.method in BODILESS_METHODS:

            def payload() -> bytes:
                return request_line_payload(method=request.method, full_path=request.get_full_path())

        else:

            def payload() -> bytes:
                return json_body(request)

        identity = agent_signature_check(
            key_id=request.headers.get(HEADER_KEY_ID, ""),
            timestamp=request.headers.get(HEADER_TIMESTAMP, ""),
            signature=request.headers.get(HEADER_SIGNATURE, ""),
            payload=payload,
        )
        return None if identity is None else (identity, identity)

    def authenticate_header(self, request: Request) -> str:
        return 'Twin-HMAC-SHA256 realm="agents"'
