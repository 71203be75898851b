"""Query parameters read strictly: a bad one is a 400 that names it, never a 500 or a silent default."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from rest_framework import status
from rest_framework.exceptions import APIException

# Times a history can be asked about: from the epoch to well before the
# calendar's end, so bucket arithmetic around them never overflows.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


# Up to 19 digits: every 64-bit id (a larger number is then refused by its range).
_WHOLE = re.compile(r"-?[0-9]{1,19}")


class InvalidParameter(APIException):
    """``400 {"error": "invalid_parameter", "detail": "...", "parameter": "<name>"}``.

    An endpoint whose API names its refusal otherwise passes its ``code`` (the
    commands list answers a bad filter ``invalid_filter``).
    """

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_parameter"

    def __init__(self, parameter: str, detail: str, *, code: str = "invalid_parameter") -> None:
        super().__init__(detail=detail, code=code)
        self.parameter = parameter

    @property
    def error_fields(self) -> dict[str, str]:
        """Added to the error body by ``common.errors.json_exception_handler``."""
        return {"parameter": self.parameter}


def param_datetime(query: Mapping[str, str], name: str, *, default: datetime) -> datetime:
    """An ISO-8601 time with its offset (``2026-11-29T10:00:00Z``, ``…+01:00``), in UTC."""
    raw = query.get(name)
    if raw is None:
        return default
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidParameter(
            name, f"{name}={raw[:60]!r} is not an ISO-8601 time (e.g. 2026-11-29T10:00:00Z)."
        ) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidParameter(name, f"{name}={raw[:60]!r} has no offset: add Z (UTC) or +hh:mm.")
    try:
        moment = moment.astimezone(UTC)
    except (OverflowError, ValueError):
        raise InvalidParameter(name, f"{name}={raw[:60]!r} has no UTC form.") from None
    if not EARLIEST <= moment < LATEST:
        raise InvalidParameter(name, f"{name}={raw[:60]!r} is outside {EARLIEST.year}-{LATEST.year}.")
    return moment


def param_int(
    query: Mapping[str, str],
    name: str,
    *,
    default: int | None,
    minimum: int,
    maximum: int,
    code: str = "invalid_parameter",
) -> int | None:
    """A whole number within [minimum, maximum]; ``code`` names the refusal."""
    raw = query.get(name)
    if raw is None:
        return default
    if not _WHOLE.fullmatch(raw):
        raise InvalidParameter(name, f"{name}={raw[:40]!r} is not a whole number.", code=code)
    value = int(raw)
    if not minimum <= value <= maximum:
        raise InvalidParameter(name, f"{name}={value} is outside {minimum}..{maximum}.", code=code)
    return value


def param_choices(query: Mapping[str, str], name: str, *, allowed: Iterable[str]) -> tuple[str, ...] | None:
    """A comma-separated list of allowed values (None when absent); an unknown or repeated one is refused."""
    raw = query.get(name)
    if raw is None:
        return None
    allowed = tuple(allowed)
    values = tuple(v.strip() for v in raw.split(","))
    unknown = [v for v in values if v not in allowed]
    if unknown or not values:
        raise InvalidParameter(name, f"{name}: unknown {', '.join(map(repr, unknown))}; known: {', '.join(allowed)}.")
    if len(set(values)) != len(values):
        raise InvalidParameter(name, f"{name}={raw[:60]!r} names a value twice.")
    return values
