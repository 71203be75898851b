"""Decoding JSON from clients: every way bytes can fail becomes one exception with a reason.

msgspec raises ``DecodeError`` for bytes that are not JSON and ``ValidationError``
(a subclass) for JSON of the wrong shape, but two other failures escape both and
used to reach clients as 500s:

- ``RecursionError`` for arrays or objects nested deeper than the interpreter's
  recursion limit, even inside a value kept as ``msgspec.Raw`` or an unknown
  field that is skipped (``{"samples": [[[[…1,200 deep…]]]]}``);
- ``UnicodeDecodeError`` for a string holding bytes that are not UTF-8.

Every decoder of client input goes through ``json_decode``, so no decoding can
fail in another way. It also refuses JSON nested deeper than
``common.jsondepth.JSON_DEPTH_MAX`` before decoding it (``JsonTooDeep``, a 400
naming the field): what is accepted can be stored and encoded again by every
later step (issue 24).
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

from common.errors import Refused
from common.jsondepth import JSON_DEPTH_MAX, json_too_deep
from common.text import reason_readable

T = TypeVar("T")


class JsonRefused(ValueError):
    """Client bytes that are not the JSON expected; ``str(exc)`` says why."""


class JsonMalformed(JsonRefused):
    """The bytes are not JSON at all: a syntax error, bytes that are not UTF-8, nesting too deep."""


class JsonInvalid(JsonRefused):
    """The bytes are JSON, of the wrong shape (a missing field, a wrong type, a value out of bounds)."""


_FIELD = re.compile(r"^\$(?:\.[A-Za-z_][A-Za-z0-9_]*|\[[^\]]*\])?")
_PATH_SHOWN_MAX = 200


class JsonTooDeep(Refused):
    """Client JSON nested deeper than ``JSON_DEPTH_MAX``: a 400 whose ``field`` names where (``$.data``).

    A refusal of its own (not a ``JsonRefused``): no caller turns it into a
    reason among others (a batch's sample, say); the whole request is refused,
    so nothing of it is stored.
    """

    def __init__(self, path: str) -> None:
        field = _FIELD.match(path).group() if _FIELD.match(path) else "$"  # type: ignore[union-attr]
        shown = path if len(path) <= _PATH_SHOWN_MAX else path[:_PATH_SHOWN_MAX] + "…"
        name = "The JSON" if field == "$" else field.removeprefix("$.")
        super().__init__(
            "json_too_deep",
            f"{name} nests arrays and objects deeper than {JSON_DEPTH_MAX} levels (the body counting as one), "
            f"at {shown}; at most {JSON_DEPTH_MAX} (JSON_DEPTH_MAX).",
            fields={"field": field, "maxDepth": JSON_DEPTH_MAX},
        )
        self.path = path


def json_depth_check(data: bytes | str | msgspec.Raw) -> None:
    """Refuse with ``JsonTooDeep`` client JSON nested deeper than ``JSON_DEPTH_MAX``."""
    path = json_too_deep(data if isinstance(data, bytes | str) else bytes(data))
    if path is not None:
        raise JsonTooDeep(path)


def json_decode(decoder: msgspec.json.Decoder[T] | Any, data: bytes | msgspec.Raw, *, checked: bool = False) -> T:
    """``decoder.decode(data)``, raising ``JsonMalformed`` or ``JsonInvalid`` for any client fault.

    JSON nested deeper than ``JSON_DEPTH_MAX`` is refused first (``JsonTooDeep``),
    unless ``checked``: ``data`` is a part of a body this function already
    checked (a batch's samples, kept raw by the envelope).
    """
    if not checked:
        json_depth_check(data)
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise JsonInvalid(reason_readable(str(exc))) from None
    except msgspec.DecodeError as exc:
        raise JsonMalformed(str(exc)) from None
    except RecursionError:
        raise JsonMalformed("JSON is malformed: arrays or objects nested too deeply") from None
    except UnicodeDecodeError:
        raise JsonMalformed("JSON is malformed: a string holds bytes that are not UTF-8") from None
