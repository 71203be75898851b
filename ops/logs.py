"""Log lines for operators: a request id on each, JSON when asked, and never a secret.

The request id lives in a context variable, so it follows a request from the
event loop into the threads ``sync_to_async`` runs its sync code in (asgiref
copies the context into them): every line logged while handling a request,
whichever thread writes it, carries the same id. ``RequestIdFilter`` copies it
onto each record; the formatters below write it.

Both formatters pass their output through ``redact``: whatever a library or a
careless line puts in a message (a header, a cookie, a key), credentials are
replaced before the line leaves the process. The first defence is still not to
log them: no line here logs headers, cookies, bodies or query strings.
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.orjson import OrjsonFormatter

# Outside a request (start-up, the broadcaster's loop) the id is "-".
NO_REQUEST = "-"
request_id_var: ContextVar[str] = ContextVar("request_id", default=NO_REQUEST)

# What a proxy may hand us in X-Request-ID: nginx's $request_id (32 hex), a UUID,
# or a tracing id with dots and colons. Anything else (too long, spaces, quotes,
# newlines that would forge log lines) is replaced by an id of our own.
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:=+/-]{0,127}")


def request_id_from_header(value: str | None) -> str:
    """The id to use for a request: the proxy's, when it is well-formed, else a new one."""
    if value and REQUEST_ID_PATTERN.fullmatch(value):
        return value
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on every record (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


# Credentials as they could appear in a log line. Each pattern keeps what names
# the secret and replaces the secret itself.
_REDACTED = "[redacted]"
_SECRET_NAMES = (
    r"authorization|proxy-authorization|cookie|set-cookie|x-twin-signature|x-twin-key-secret|"
    r"sessionid|csrftoken|csrfmiddlewaretoken|signing_?secret|signingsecret|enrollment_?key|"
    r"api_?key|api_?token|token|password|passwd|secret|secret_key|credential_key"
)
# Each pattern with the lower-case words a line must contain for it to apply: most lines
# contain none, and a substring test costs far less than a regex pass over the line
# (an access line went from about 100 µs of redaction to about 10).
_REDACTIONS: tuple[tuple[tuple[str, ...], re.Pattern[str], str], ...] = (
    # "Authorization: Bearer abc…", "Token abc…", "Basic abc…": credentials are long, prose
    # ("the token bucket") is not.
    (
        ("bearer", "token", "basic"),
        re.compile(r"\b(Bearer|Token|Basic)(\s+)[A-Za-z0-9._~+/=-]{16,}", re.IGNORECASE),
        rf"\1\2{_REDACTED}",
    ),
    # name=value, name: value, 'name': 'value', "name": "value" (headers, dicts, cookies, forms)
    (
        ("auth", "cookie", "signature", "session", "csrf", "secret", "key", "token", "passw"),
        re.compile(
            rf"\b({_SECRET_NAMES})"  # the name
            r"(\\?[\"']?\s*[:=]\s*\\?[\"']?)"  # its separator, quoted or not (JSON escapes quotes)
            r"(?!\[redacted\]|(?:Bearer|Token|Basic)\s)[^\s\"',;&}\\]+",  # the value, unless done above
            re.IGNORECASE,
        ),
        rf"\1\2{_REDACTED}",
    ),
    # The twin's own secret shapes: enrollment keys and HMAC signatures or secrets.
    (("tek_",), re.compile(r"\btek_[A-Za-z0-9_-]{16,}"), f"tek_{_REDACTED}"),
    (("sha256=",), re.compile(r"\bsha256=[0-9a-fA-F]{64}\b"), f"sha256={_REDACTED}"),
    ((), re.compile(r"\b[0-9a-fA-F]{64}\b"), _REDACTED),
)


def redact(text: str) -> str:
    """``text`` with every credential it seems to carry replaced by ``[redacted]``."""
    lowered = text.lower()
    for hints, pattern, replacement in _REDACTIONS:
        if not hints or any(hint in lowered for hint in hints):
            text = pattern.sub(replacement, text)
    return text


class PlainFormatter(logging.Formatter):
    """Human-readable lines (the default), redacted."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(OrjsonFormatter):
    """One JSON object per line: time, level, logger, message, request_id, thread; redacted.

    Django's request log records carry the request object as an extra field; its
    repr holds the query string, so it is left out (the message names the path).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("reserved_attrs", [*RESERVED_ATTRS, "request", "taskName"])
        kwargs.setdefault("timestamp", "time")
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger", "threadName": "thread"})
        super().__init__(*args, **kwargs)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
