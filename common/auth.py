"""Readers' API tokens, checked for shape before they reach the database.

A token sent as ``Authorization: Token <key>`` or as Socket.IO auth
(``{"token": "\u0000abc"}``) was looked up as it came: a NUL made PostgreSQL
fail, a 500 over HTTP and a connect handler that never answered. DRF issues
40 hexadecimal characters; a key that could not be stored is refused as an
invalid token before any query.
"""

from __future__ import annotations

import re
from typing import Any

from rest_framework import authentication, exceptions

# Printable ASCII up to the column's 40 characters: every key DRF issues, and
# any an admin could have stored, but nothing the database cannot hold.
TOKEN_KEY_RE = re.compile(r"[\x21-\x7e]{1,40}")


def token_key_plausible(key: Any) -> bool:
    """True when ``key`` could be a stored API token."""
    return isinstance(key, str) and TOKEN_KEY_RE.fullmatch(key) is not None


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's token authentication, refusing an implausible key without a query."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        if not token_key_plausible(key):
            raise exceptions.AuthenticationFailed("Invalid token.")
        return super().authenticate_credentials(key)
