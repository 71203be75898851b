"""Pieces every JSON endpoint shares: the raw JSON body and the errors about it."""

from __future__ import annotations

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
        return request._request.body
    except RequestDataTooBig:
        raise PayloadTooLarge() from None
