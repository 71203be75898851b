"""The ``json`` module python-socketio is given: orjson, free of Django so any server can use it."""

from __future__ import annotations

from typing import Any

import orjson

from common.jsondepth import JSON_DEPTH_MAX, json_too_deep


class OrjsonForSocketIO:
    """The ``json`` module interface python-socketio expects, backed by orjson.

    A 10,000-host snapshot is megabytes; orjson encodes it several times faster
    than the standard library, once per broadcast.
    """

    @staticmethod
    def dumps(obj: Any, **_: Any) -> str:
        return orjson.dumps(obj).decode()

    @staticmethod
    def loads(data: str | bytes, **_: Any) -> Any:
        """A client's packet, held to the one depth limit of client JSON (``twin.live.transport`` makes the
        ``ValueError`` a malformed packet, ignored)."""
        if (path := json_too_deep(data)) is not None:
            raise ValueError(f"the JSON nests arrays and objects deeper than {JSON_DEPTH_MAX} levels at {path[:200]}")
        return orjson.loads(data)
