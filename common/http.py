"""Pieces every JSON endpoint shares: the raw JSON body and the errors about it."""

from __future__ import annotations

import zlib

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import status
from rest_framework.exceptions import APIException, UnsupportedMediaType
from rest_framework.request import Request


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The body is larger than this server accepts."
    default_code = "payload_too_large"


class MalformedBody(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "malformed_body"


def json_body(request: Request) -> bytes:
    """The raw bytes of a JSON request body, as sent (a signature covers exactly these).

    Refuses another content type with a 415 and an oversized body with a 413.
    """
    if request.content_type.split(";")[0].strip().lower() != "application/json":
        raise UnsupportedMediaType(request.content_type or "none")
    try:
        # DRF's Request hands attributes it lacks to Django's HttpRequest; the
        # body was never read through DRF's parsers, so it is still available.
        return request.body
    except RequestDataTooBig:
        raise PayloadTooLarge(
            f"The body is larger than {settings.TWIN_MAX_BODY_BYTES} bytes (TWIN_MAX_BODY_BYTES)."
        ) from None


def json_decoded(request: Request) -> bytes:
    """The JSON body, inflated when sent with ``Content-Encoding: gzip``.

    Inflation stops at ``TWIN_MAX_BODY_BYTES``: a small gzip bomb cannot make
    the server hold gigabytes. Any other content encoding is a 415.
    """
    raw = json_body(request)
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding != "gzip":
        raise UnsupportedMediaType(f"Content-Encoding {encoding}", detail="Only gzip is accepted as Content-Encoding.")
    limit = settings.TWIN_MAX_BODY_BYTES
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        body = inflater.decompress(raw, limit)
    except zlib.error as exc:
        raise MalformedBody(f"The gzip body is corrupt: {exc}", code="malformed_gzip") from None
    if inflater.unconsumed_tail or (not inflater.eof and len(body) >= limit):
        raise PayloadTooLarge(f"The inflated body is larger than {limit} bytes (TWIN_MAX_BODY_BYTES).")
    if not inflater.eof:
        raise MalformedBody("The gzip body is truncated.", code="malformed_gzip")
    return body
