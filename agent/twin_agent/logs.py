"""Log lines: human-readable by default, one JSON object a line with ``--log-format json``.

Structured details travel in ``extra={"fields": {...}}``: appended as
``key=value`` to a text line, merged into the JSON object.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from twin_agent.formats import iso_utc

# Characters that would let text forge or hide log lines: C0 and C1 controls (newlines, terminal
# escapes), DEL, and the Unicode line separators and bidirectional overrides.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")
TEXT_SAFE_MAX = 200


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def text_safe(value: object, *, limit: int | None = TEXT_SAFE_MAX) -> str:
    """``value`` as one line of text fit for a log: control characters escaped, cut at ``limit`` characters.

    Every log call that carries a server's text goes through it (``Reply.detail`` and ``Reply.error``
    do), and the formatters apply it to every whole line again, so nothing the server sends can start
    a line of its own or drive the operator's terminal.
    """
    text = value if isinstance(value, str) else str(value)
    if limit is not None and len(text) > limit:
        text = text[:limit] + "…"
    return _UNSAFE.sub(_escaped, text)


class OnceLog:
    """Warn about one kind of bad answer once until ``clear()`` (a good answer): not at every try."""

    def __init__(self, log: logging.Logger) -> None:
        self.log = log
        self.told: set[str] = set()

    def warning(self, kind: str, message: str, *args: object) -> None:
        if kind not in self.told:
            self.told.add(kind)
            self.log.warning(message, *args)

    def clear(self) -> None:
        self.told.clear()


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return fields if isinstance(fields, dict) else {}


class TextFormatter(logging.Formatter):
    """``2026-11-27T10:05:12.345Z WARNING message key=value``."""

    def format(self, record: logging.LogRecord) -> str:
        moment = iso_utc(datetime.fromtimestamp(record.created, UTC))
        line = f"{moment} {record.levelname} {text_safe(record.getMessage(), limit=None)}"
        extra = " ".join(f"{key}={text_safe(value)}" for key, value in _fields(record).items())
        if extra:
            line += " " + extra
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """``{"time": …, "level": …, "logger": …, "msg": …, <fields>}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": iso_utc(datetime.fromtimestamp(record.created, UTC)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": text_safe(record.getMessage(), limit=None),
        }
        entry.update(_fields(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def logging_setup(*, fmt: str = "text", level: str = "info", stream: TextIO | None = None) -> None:
    """Send the agent's logs to ``stream`` (stderr: journald keeps it under systemd)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger("twin_agent")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
