"""The request signature of docs/api.md: HMAC-SHA256 of ``"<timestamp>." + bytes``.

A body-carrying request signs its body exactly as sent; a request without a
body (the commands long poll) signs ``"GET " + path with query``
(/work/briefs/commands-protocol.md).
"""

from __future__ import annotations

import hashlib
import hmac

HEADER_KEY_ID = "X-Twin-Key-Id"
HEADER_TIMESTAMP = "X-Twin-Timestamp"
HEADER_SIGNATURE = "X-Twin-Signature"
SIGNATURE_SCHEME = "sha256="


def signature_compute(*, secret: str, timestamp: str, signed: bytes) -> str:
    """``sha256=`` + hex HMAC-SHA256 of ``"<timestamp>." + signed`` under ``secret``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + signed, hashlib.sha256)
    return SIGNATURE_SCHEME + mac.hexdigest()


def signed_headers(*, key_id: str, secret: str, signed: bytes, now: float) -> dict[str, str]:
    """The three signature headers for ``signed`` (a body, or ``b"GET " + path``) at Unix time ``now``."""
    stamp = str(int(now))
    return {
        HEADER_KEY_ID: key_id,
        HEADER_TIMESTAMP: stamp,
        HEADER_SIGNATURE: signature_compute(secret=secret, timestamp=stamp, signed=signed),
    }


def get_signed_bytes(path_with_query: str) -> bytes:
    """What a bodiless ``GET`` signs: ``b"GET /api/commands/pending?wait=25"``."""
    return b"GET " + path_with_query.encode()
