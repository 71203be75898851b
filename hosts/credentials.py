"""Secrets of agents: enrollment keys, key ids, derived signing secrets, signatures.

Pure functions over bytes and strings, so the signature scheme can be read,
tested and reimplemented by an agent in a few lines (see docs/api.md).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.conf import settings

ENROLLMENT_KEY_PREFIX = "tek_"
KEY_ID_PREFIX = "tak_"
SIGNATURE_SCHEME = "sha256="

HEADER_KEY_ID = "X-Twin-Key-Id"
HEADER_TIMESTAMP = "X-Twin-Timestamp"
HEADER_SIGNATURE = "X-Twin-Signature"
# What a registration refused for want of a usable enrollment key asks for (its 401's WWW-Authenticate).
ENROLLMENT_CHALLENGE = 'Bearer realm="enrollment"'


def enrollment_key_generate() -> str:
    """A new enrollment key: 256 random bits, URL-safe."""
    return ENROLLMENT_KEY_PREFIX + secrets.token_urlsafe(32)


def enrollment_key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_id_generate() -> str:
    """A new public key id for a host credential."""
    return KEY_ID_PREFIX + secrets.token_hex(12)


def signing_secret_for(key_id: str) -> str:
    """The signing secret of a key id: HMAC(TWIN_CREDENTIAL_KEY, key id).

    Derived rather than stored, so a copy of the database cannot sign batches.
    """
    return hmac.new(settings.TWIN_CREDENTIAL_KEY.encode(), key_id.encode(), hashlib.sha256).hexdigest()


def signature_compute(*, secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=`` + hex HMAC-SHA256 of ``"<timestamp>." + body`` under ``secret``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return SIGNATURE_SCHEME + mac.hexdigest()


def signature_matches(*, secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """Compare in constant time, so timing reveals nothing of the expected value."""
    expected = signature_compute(secret=secret, timestamp=timestamp, body=body)
    return hmac.compare_digest(expected.encode(), signature.encode())
