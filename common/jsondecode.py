"""Decoding JSON from clients: every way bytes can fail becomes one exception with a reason.

msgspec raises ``DecodeError`` for bytes that are not JSON and ``ValidationError``
(a subclass) for JSON of the wrong shape, but two other failures escape both and
used to reach clients as 500s:

- ``RecursionError`` for arrays or objects nested deeper than the interpreter's
  recursion limit, even inside a value kept as ``msgspec.Raw`` or an unknown
  field that is skipped (``{"samples": [[[[…1,200 deep…]]]]}``);
- ``UnicodeDecodeError`` for a string holding bytes that are not UTF-8.

Every decoder of client input goes through ``json_decode``, so no decoding can
fail in another way.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from common.text import reason_readable

T = TypeVar("T")


class JsonRefused(ValueError):
    """Client bytes that are not the JSON expected; ``str(exc)`` says why."""


class JsonMalformed(JsonRefused):
    """The bytes are not JSON at all: a syntax error, bytes that are not UTF-8, nesting too deep."""


class JsonInvalid(JsonRefused):
    """The bytes are JSON, of the wrong shape (a missing field, a wrong type, a value out of bounds)."""


def json_decode(decoder: msgspec.json.Decoder[T] | Any, data: bytes | msgspec.Raw) -> T:
    """``decoder.decode(data)``, raising ``JsonMalformed`` or ``JsonInvalid`` for any client fault."""
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
