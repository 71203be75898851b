"""Django's database sessions, with a session key from a cookie checked before it reaches the database.

Django keeps any cookie value of 8 characters or more as the session key and
looks it up: a key holding a NUL made PostgreSQL fail, so a stranger's cookie
turned ``/api/twin/state``, ``/admin/`` and ``/admin/login/`` into 500s, and the
Socket.IO connect handler crashed without an answer. Keys Django issues are 32
characters of ``[a-z0-9]``; anything else is no session at all, on every path
that loads a session (``SESSION_ENGINE = "common.sessions"``).
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore

# What Django issues (``get_random_string(32, VALID_KEY_CHARS)``), with room for
# a longer key up to the column's 40 characters.
SESSION_KEY_RE = re.compile(r"[a-z0-9]{8,40}")


def session_key_plausible(key: Any) -> bool:
    """True when ``key`` could be a key this server issued."""
    return isinstance(key, str) and SESSION_KEY_RE.fullmatch(key) is not None


class SessionStore(DatabaseSessionStore):
    """``django.contrib.sessions.backends.db``, treating an implausible key as no session."""

    def _validate_session_key(self, key: Any) -> bool:
        return session_key_plausible(key)
