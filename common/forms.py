"""Form fields for what clients type into the admin's forms."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.forms.fields import InvalidJSONInput

from common.jsondepth import JSON_DEPTH_MAX, json_too_deep


class ClientJSONField(forms.JSONField):
    """A JSON form field held to the API's depth limit, checked on the text before it is parsed.

    Django's field parses with the standard library (which raises
    ``RecursionError`` past about 1,000 levels, a 500) and stores whatever
    nests less; orjson then failed to encode it for the agents past 254. The
    form names the field and the limit instead.
    """

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and (path := json_too_deep(value)) is not None:
            raise ValidationError(
                "This JSON nests arrays and objects deeper than %(limit)d levels (at %(path)s).",
                code="json_too_deep",
                params={"limit": JSON_DEPTH_MAX, "path": path[:200]},
            )
        return super().to_python(value)

    def bound_data(self, data: Any, initial: Any) -> Any:
        # The form shown again with its errors parses the text once more: keep it as typed instead.
        if isinstance(data, str) and json_too_deep(data) is not None:
            return InvalidJSONInput(data)
        return super().bound_data(data, initial)
