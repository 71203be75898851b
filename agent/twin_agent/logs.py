"""Log lines: human-readable by default, one JSON object a line with ``--log-format json``.

Structured details travel in ``extra={"fields": {...}}``: appended as
``key=value`` to a text line, merged into the JSON object.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from twin_agent.formats import iso_utc


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return fields if isinstance(fields, dict) else {}


class TextFormatter(logging.Formatter):
    """``2026-11-27T10:05:12.345Z WARNING message key=value``."""

    def format(self, record: logging.LogRecord) -> str:
        moment = iso_utc(datetime.fromtimestamp(record.created, UTC))
        line = f"{moment} {record.levelname} {record.getMessage()}"
        extra = " ".join(f"{key}={value}" for key, value in _fields(record).items())
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
            "msg": record.getMessage(),
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
