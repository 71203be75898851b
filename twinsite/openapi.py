"""OpenAPI components for the shapes declared as msgspec Structs and TypedDicts.

The request and response shapes are declared once, in the code that reads or
writes them; this hook turns them into JSON Schema for drf-spectacular.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

import msgspec

from hosts.schema import HostRegistrationRequest, HostRegistrationResponse
from metrics.schema import BatchEnvelope, SampleIn
from metrics.views import BatchAccepted, HostSeries
from twin.snapshot import TwinState
from twin.views import HostEvents

REF = "#/components/schemas/{name}"


class Error(TypedDict):
    """Every error: a machine-readable code and a sentence for people (and the query parameter at fault)."""

    error: str
    detail: Any
    parameter: NotRequired[str]


def components_append(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular post-processing hook: add the Structs' and TypedDicts' schemas."""
    _, components = msgspec.json.schema_components(
        [
            BatchEnvelope,
            SampleIn,
            BatchAccepted,
            TwinState,
            HostRegistrationRequest,
            HostRegistrationResponse,
            HostSeries,
            HostEvents,
            Error,
        ],
        ref_template=REF,
    )
    # Each sample is judged on its own: one that breaks SampleIn is refused in
    # the 202's "rejected" list while the others are stored. So the request
    # schema admits any object as an item, and names SampleIn as the shape
    # an item must have to be stored.
    batch = components.pop("BatchEnvelope")
    batch["properties"]["samples"] = {
        "type": "array",
        "items": {"anyOf": [{"$ref": REF.format(name="SampleIn")}, {"type": "object"}]},
        "description": "Samples of the SampleIn shape are stored; any other item is refused on its own, "
        "with its index and reason, in the answer's rejected list.",
    }
    batch["title"] = "MetricsBatch"
    components["MetricsBatch"] = batch
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(components)
    result["components"].setdefault("securitySchemes", {})["enrollmentKey"] = {"type": "http", "scheme": "bearer"}
    return result
