"""How deep client JSON may nest: one limit for every value a client sends, checked on its bytes.

A client's value is decoded, stored and encoded again (a command's arguments and
result ``data``, and whatever follows them): the decoders take about 1,000
levels of arrays and objects, orjson encodes at most 254, and Django's
``json`` recurses in Python. A result nested 300 deep was stored, then every
answer that carried it was a 500. ``JSON_DEPTH_MAX`` is the one limit: no
client JSON deeper is decoded (``common.jsondecode.json_decode``, the admin's
JSON fields, Socket.IO packets), so every later step carries what was
accepted, with room for the documents that wrap it (a value at the limit
inside a command's document, an event, a page is still far below 254).

Free of Django: the Socket.IO server's JSON module uses it too.
"""

from __future__ import annotations

import functools
import re

# The deepest nesting of arrays and objects a client's JSON may have, the document itself
# counting as the first level: {"data": {"a": [1]}} is 3 deep. Below orjson's 254 with
# room for the documents that wrap a stored value (docs/security.md).
JSON_DEPTH_MAX = 32

# Every byte but the brackets and the quote is dropped; braces are counted as brackets.
_NOT_STRUCTURAL = bytes(b for b in range(256) if b not in b'[]{}"')
_FOLD = bytes.maketrans(b"{}", b"[]")
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},:]', re.DOTALL)
_KEY_SHOWN_MAX = 40


@functools.cache
def _nesting_at_most(limit: int) -> re.Pattern[bytes]:
    """A pattern matching balanced brackets nested at most ``limit`` deep.

    Nesting bounded by a number is a regular language: ``(?:\\[ … \\])*+``
    within itself ``limit`` times. Possessive, so the engine never backtracks:
    a 1,000-sample batch's brackets match in about 20 µs, six million in 0.2 s,
    and ten megabytes of ``[`` fail at the 33rd.
    """
    pattern = b""
    for _ in range(limit):
        pattern = rb"(?:\[" + pattern + rb"\])*+"
    return re.compile(pattern)


def json_too_deep(data: bytes | str, *, limit: int = JSON_DEPTH_MAX) -> str | None:
    """Where the JSON text ``data`` first nests deeper than ``limit`` (``$.data.a[0]``), or None when it does not.

    Brackets inside strings do not count. In C but for the path of a text
    being refused: escaped backslashes and escaped quotes go first, then every
    byte but brackets and quotes, then what lies between quotes (a pair of
    adjacent quotes encloses no bracket, so dropping it keeps every bracket's
    side), and the brackets left are matched against ``_nesting_at_most``.
    Text that is not JSON may pass: its decoder refuses it.
    """
    original = raw = data.encode(errors="surrogatepass") if isinstance(data, str) else bytes(data)
    if b"\\" in raw:
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    kept = raw.translate(_FOLD, _NOT_STRUCTURAL)
    if b'"' in kept:
        kept = kept.replace(b'""', b"")
        if b'"' in kept:
            kept = b"".join(kept.split(b'"')[::2])
    if _nesting_at_most(limit).fullmatch(kept):
        return None
    return _path_beyond(original, limit)


def _path_beyond(data: bytes, limit: int) -> str | None:
    """The path (msgspec's notation) of the first array or object opened beyond ``limit``, or None.

    A Python scan, run only for a text being refused: it stops there. None
    when the text never goes beyond (unbalanced brackets: not JSON at all).
    """
    # Each open container: [is_object, current key or index, expecting a key].
    stack: list[list] = []
    for match in _TOKEN.finditer(data):
        token = match.group()
        top = stack[-1] if stack else None
        if token in (b"[", b"{"):
            if len(stack) == limit:
                return _path(stack)
            stack.append([token == b"{", 0 if token == b"[" else "", token == b"{"])
        elif token in (b"]", b"}"):
            if stack:
                stack.pop()
        elif token == b",":
            if top is not None:
                if top[0]:
                    top[2] = True
                else:
                    top[1] += 1
        elif token == b":":
            if top is not None:
                top[2] = False
        elif top is not None and top[0] and top[2]:
            top[1] = token[1:-1].decode("utf-8", "replace")
    return None


def _path(stack: list[list]) -> str:
    path = "$"
    for is_object, key, _ in stack:
        if is_object:
            shown = key if len(key) <= _KEY_SHOWN_MAX else key[:_KEY_SHOWN_MAX] + "…"
            path += f".{shown}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", shown) else f"[{shown!r}]"
        else:
            path += f"[{key}]"
    return path
