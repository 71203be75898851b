"""The JSON parser DRF's ``request.data`` uses: ``common.jsondecode``, so its depth limit and its reasons."""

from __future__ import annotations

from typing import Any

import msgspec
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

_ANY_JSON = msgspec.json.Decoder()


class ClientJSONParser(BaseParser):
    """``application/json`` bodies read through ``json_decode`` (DRF's own parser has no depth limit).

    The endpoints that take JSON read their raw bodies (``common.http.json_decoded``);
    this keeps any view that reads ``request.data`` to the same rules.
    """

    media_type = "application/json"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        # Imported here: DRF imports this class while rest_framework.views loads, which common.jsondecode needs.
        from common.jsondecode import JsonRefused, json_decode

        data = stream.read() if stream is not None else b""
        try:
            return json_decode(_ANY_JSON, data)
        except JsonRefused as exc:
            raise ParseError(f"JSON parse error: {exc}") from None
