"""Pieces every JSON endpoint shares: the raw JSON body, its inflation, and the errors about them."""

from __future__ import annotations

import threading
import time
import zlib

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest
from rest_framework import status
from rest_framework.exceptions import APIException, UnsupportedMediaType
from rest_framework.request import Request

# How long a request waits for room in the budget before it is told to come back (503).
INFLATE_WAIT_SECONDS = 10.0


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The body is larger than this server accepts."
    default_code = "payload_too_large"


class MalformedBody(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "malformed_body"


class ServerBusy(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The server is inflating as many bodies as it holds at once; retry later."
    default_code = "server_busy"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail)
        # DRF's handler turns ``wait`` into Retry-After.
        self.wait = settings.TWIN_RETRY_AFTER_SECONDS


def json_body(request: Request, *, limit: int | None = None) -> bytes:
    """The raw bytes of a JSON request body, as sent (a signature covers exactly these); see ``raw_body``."""
    return raw_body(request, content_type="application/json", limit=limit)


def raw_body(request: Request, *, content_type: str, limit: int | None = None) -> bytes:
    """The raw bytes of a request body of ``content_type``, as sent.

    Refuses another content type with a 415, and a body over ``limit`` (by
    default ``TWIN_MAX_BODY_BYTES``) with a 413; a ``Content-Length`` over it is
    refused before the body is read.
    """
    if request.content_type.split(";")[0].strip().lower() != content_type:
        raise UnsupportedMediaType(request.content_type or "none")
    limit = settings.TWIN_MAX_BODY_BYTES if limit is None else min(limit, settings.TWIN_MAX_BODY_BYTES)
    too_large = PayloadTooLarge(f"The body is larger than {limit} bytes.")
    declared = request.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    try:
        # DRF's Request hands attributes it lacks to Django's HttpRequest; the
        # body was never read through DRF's parsers, so it is still available.
        # Django refuses a body over DATA_UPLOAD_MAX_MEMORY_SIZE (= TWIN_MAX_BODY_BYTES)
        # before reading it, chunked ones included.
        body = request.body
    except RequestDataTooBig:
        raise too_large from None
    if len(body) > limit:
        raise too_large
    return body


def json_decoded(request: Request, *, limit: int | None = None) -> bytes:
    """The JSON body, inflated when sent with ``Content-Encoding: gzip``; at most ``limit`` bytes either way.

    Inflation is bounded twice: one body inflates to at most ``limit`` (by
    default ``TWIN_MAX_BODY_BYTES``: a small gzip bomb cannot make the server
    hold gigabytes), and the bodies inflated by all requests of the process at
    once hold at most ``TWIN_INFLATE_BUDGET_BYTES`` (see ``InflationBudget``).
    Any other content encoding is a 415.
    """
    raw = json_body(request, limit=limit)
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding != "gzip":
        raise UnsupportedMediaType(f"Content-Encoding {encoding}", detail="Only gzip is accepted as Content-Encoding.")
    limit = settings.TWIN_MAX_BODY_BYTES if limit is None else min(limit, settings.TWIN_MAX_BODY_BYTES)
    return _gzip_inflate(raw, limit=limit, request=getattr(request, "_request", request))


def _gzip_inflate(raw: bytes, *, limit: int, request: HttpRequest) -> bytes:
    """Inflate a gzip body, its size reserved first in the process's budget for the rest of the request.

    A gzip stream ends with the size it inflates to (ISIZE), which zlib checks
    when it reaches the end. The reservation is that size (at most ``limit``)
    and made once, before inflating: a request waiting for room holds none, so
    requests cannot hold parts of the budget while each waits for the rest. A
    stream that inflates beyond its declared size is refused when it passes it.
    """
    declared = int.from_bytes(raw[-4:], "little") if len(raw) >= 18 else 0
    expected = min(declared, limit)
    inflation_budget.reserve(request, expected + 1)
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        body = inflater.decompress(raw, expected + 1)
    except zlib.error as exc:
        raise MalformedBody(f"The gzip body is corrupt: {exc}", code="malformed_gzip") from None
    if len(body) > expected:
        if expected == limit:
            raise PayloadTooLarge(f"The inflated body is larger than {limit} bytes.")
        raise MalformedBody("The gzip body inflates beyond the size its trailer declares.", code="malformed_gzip")
    if not inflater.eof:
        raise MalformedBody("The gzip body is truncated.", code="malformed_gzip")
    return body


class InflationBudget:
    """The bytes of inflated bodies all requests of this process hold at once: at most ``TWIN_INFLATE_BUDGET_BYTES``.

    A request reserves the size its body will inflate to before inflating it
    and keeps the reservation until it is answered
    (``common.middleware.ClientFaultMiddleware`` releases it): the body lives
    that long. When the budget is spent, a request waits up to
    ``INFLATE_WAIT_SECONDS`` for others to finish, holding nothing, then gets a
    503 with ``Retry-After``. So 32 clients sending bodies that inflate to
    10 MB at once cost at most the budget, not 320 MB (docs/reliability.md).
    """

    ATTRIBUTE = "_twin_inflation_reserved"

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self.in_use = 0

    def reserve(self, request: HttpRequest, size: int) -> None:
        """Reserve ``size`` more bytes for ``request``, waiting for room; ``ServerBusy`` if none comes."""
        if size <= 0:
            return
        deadline = time.monotonic() + INFLATE_WAIT_SECONDS
        with self._lock:
            while self.in_use + size > settings.TWIN_INFLATE_BUDGET_BYTES:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ServerBusy(
                        f"The server holds {settings.TWIN_INFLATE_BUDGET_BYTES} bytes of inflated bodies at most "
                        "(TWIN_INFLATE_BUDGET_BYTES) and is full; retry later."
                    )
                self._lock.wait(remaining)
            self.in_use += size
        setattr(request, self.ATTRIBUTE, getattr(request, self.ATTRIBUTE, 0) + size)

    def release(self, request: HttpRequest) -> None:
        """Give back everything ``request`` reserved (once it has been answered)."""
        size = getattr(request, self.ATTRIBUTE, 0)
        if not size:
            return
        setattr(request, self.ATTRIBUTE, 0)
        with self._lock:
            self.in_use -= size
            self._lock.notify_all()


inflation_budget = InflationBudget()
