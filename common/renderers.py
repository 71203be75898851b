"""JSON responses rendered with orjson: a 10,000-host snapshot is megabytes."""

from __future__ import annotations

from typing import Any

import orjson
from django.utils.functional import Promise
from rest_framework.renderers import BaseRenderer


def _fallback(obj: Any) -> Any:
    # DRF's error messages may be lazy translations.
    if isinstance(obj, Promise):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


class ORJSONRenderer(BaseRenderer):
    """DRF's ``JSONRenderer``, several times faster on large documents."""

    media_type = "application/json"
    format = "json"
    charset = None

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if data is None:
            return b""
        return orjson.dumps(data, default=_fallback)
