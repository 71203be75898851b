"""One definition of acceptable text, for every free-text field of every endpoint and of the admin.

A name shown on a dashboard or in the admin must look like what it is. So text
is refused when it holds a character that is invisible, moves other text around
or cannot be stored:

- control characters, C0 and C1 (``\\x00``-``\\x1f``, DEL, ``\\x80``-``\\x9f``:
  NUL cannot be stored by PostgreSQL; U+0085 and U+009B move or end lines in
  terminals and logs);
- Unicode format characters (category Cf): bidirectional overrides and
  isolates such as U+202E, zero-width spaces and joiners, U+FEFF, soft hyphens;
- the line and paragraph separators U+2028 and U+2029;
- lone surrogates (msgspec never decodes one from JSON, but a Python string
  can hold one and no database can store it), private-use characters (they
  render as whatever a font puts there) and noncharacters;
- fillers that render as nothing (Hangul fillers, the combining grapheme joiner);
- whitespace at either end (``"R1 "`` beside ``"R1"``).

The same rule exists in three forms, all built from ``FORBIDDEN_RANGES``: a
regular expression (``TEXT_PATTERN``, which msgspec applies while decoding and
which the OpenAPI schema shows), a msgspec type (``text``) and a Django
validator (``text_validate``) for model and form fields.

The ranges are written out rather than computed from ``unicodedata`` at import
(a scan of every code point costs a quarter of a second per process);
``tests/common/test_text.py`` checks them against this Python's Unicode
database, so a newer Unicode version with new format characters fails that test.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from django.core.exceptions import ValidationError

# Inclusive ranges of code points never accepted in text.
# fmt: off
FORBIDDEN_RANGES: tuple[tuple[int, int], ...] = (
    (0x0000, 0x001F), (0x007F, 0x009F),  # C0, DEL, C1 (Cc)
    (0x00AD, 0x00AD),  # soft hyphen (Cf)
    (0x034F, 0x034F),  # combining grapheme joiner: renders as nothing
    (0x0600, 0x0605), (0x061C, 0x061C), (0x06DD, 0x06DD), (0x070F, 0x070F),  # Arabic/Syriac format marks (Cf)
    (0x0890, 0x0891), (0x08E2, 0x08E2),  # Arabic format marks (Cf)
    (0x115F, 0x1160),  # Hangul choseong/jungseong fillers: render as nothing
    (0x180E, 0x180E),  # Mongolian vowel separator (Cf)
    (0x200B, 0x200F),  # zero-width space, non-joiner, joiner; LRM, RLM (Cf)
    (0x2028, 0x202E),  # line and paragraph separators (Zl, Zp); bidi embeddings and overrides (Cf)
    (0x2060, 0x2064), (0x2066, 0x206F),  # word joiner, invisible operators, bidi isolates (Cf)
    (0x3164, 0x3164),  # Hangul filler
    (0xD800, 0xF8FF),  # surrogates (Cs), private use (Co)
    (0xFDD0, 0xFDEF),  # noncharacters
    (0xFEFF, 0xFEFF),  # zero-width no-break space, byte order mark (Cf)
    (0xFFA0, 0xFFA0),  # halfwidth Hangul filler
    (0xFFF9, 0xFFFB),  # interlinear annotation (Cf)
    (0xFFFE, 0xFFFF),  # noncharacters
    (0x110BD, 0x110BD), (0x110CD, 0x110CD),  # Kaithi number signs (Cf)
    (0x13430, 0x13438),  # Egyptian hieroglyph format controls (Cf)
    (0x1BCA0, 0x1BCA3),  # shorthand format controls (Cf)
    (0x1D173, 0x1D17A),  # musical symbol format controls (Cf)
    (0xE0001, 0xE0001), (0xE0020, 0xE007F),  # tags (Cf)
    (0xF0000, 0x10FFFF),  # supplementary private use areas (Co), plane-end noncharacters
)
# fmt: on
# The last two code points of every plane are noncharacters too.
NONCHARACTERS = tuple((plane << 16) | low for plane in range(1, 17) for low in (0xFFFE, 0xFFFF))


def _escape(code: int) -> str:
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _class_of(ranges: list[tuple[int, int]]) -> str:
    return "".join(_escape(a) if a == b else f"{_escape(a)}-{_escape(b)}" for a, b in ranges)


def _forbidden() -> list[tuple[int, int]]:
    points = [(p, p) for p in NONCHARACTERS if not any(a <= p <= b for a, b in FORBIDDEN_RANGES)]
    return sorted([*FORBIDDEN_RANGES, *points])


def _astral_allowed(forbidden: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The ranges above U+FFFF that are not forbidden."""
    allowed, start = [], 0x10000
    for a, b in forbidden:
        if b < 0x10000:
            continue
        if a > start:
            allowed.append((start, a - 1))
        start = max(start, b + 1)
    if start <= 0x10FFFF:
        allowed.append((start, 0x10FFFF))
    return allowed


_FORBIDDEN_CLASS = _class_of(_forbidden())
# Written for speed: Python's re checks a class of characters below U+10000 with
# a bitmap, but one reaching above with a range at a time (ingest applies this to
# three fields of every sample: 10,000 samples took 23 ms instead of 14). So the
# characters allowed below U+10000 and those allowed above are two classes.
_PLAIN = f"[^{_class_of([(a, min(b, 0xFFFF)) for a, b in _forbidden() if a <= 0xFFFF])}\\U00010000-\\U0010ffff]"
_ASTRAL = f"[{_class_of(_astral_allowed(_forbidden()))}]"
# Python's regular-expression dialect (msgspec and the schema fuzzer read it with ``re``).
TEXT_PATTERN = rf"\A(?!\s){_PLAIN}*(?:{_ASTRAL}{_PLAIN}*)*(?<!\s)\Z"
TEXT_RE = re.compile(TEXT_PATTERN)
_FORBIDDEN_RE = re.compile(f"[{_FORBIDDEN_CLASS}]")
TEXT_RULE = (
    "printable text (no control, format, invisible or private-use characters, "
    "no line separators, no whitespace at either end)"
)


def text(*, max_length: int, min_length: int = 0) -> Any:
    """A msgspec string type holding acceptable text of at most ``max_length`` characters."""
    return Annotated[str, msgspec.Meta(min_length=min_length, max_length=max_length, pattern=TEXT_PATTERN)]


def text_problem(value: str) -> str | None:
    """Why ``value`` is not acceptable text, or None when it is."""
    if TEXT_RE.search(value):
        return None
    found = _FORBIDDEN_RE.search(value)
    if found is not None:
        return f"character U+{ord(found.group()):04X} at position {found.start()} is not allowed in {TEXT_RULE}"
    return f"whitespace at either end is not allowed in {TEXT_RULE}"


def text_validate(value: str) -> None:
    """Django validator for model and form fields: refuses what ``text_problem`` refuses."""
    problem = text_problem(value)
    if problem is not None:
        raise ValidationError(problem[:1].upper() + problem[1:] + ".", code="invalid_text")


def reason_readable(reason: str) -> str:
    """A msgspec error naming ``TEXT_PATTERN``, with the rule in words instead of the pattern."""
    return reason.replace(f"matching regex {TEXT_PATTERN!r}", f"of {TEXT_RULE}")
