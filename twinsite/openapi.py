"""OpenAPI components for the shapes declared as msgspec Structs and TypedDicts.

The request and response shapes are declared once, in the code that reads or
writes them; this hook turns them into JSON Schema for drf-spectacular.
"""

from __future__ import annotations

from typing import Any, TypedDict

import msgspec

from hosts.schema import HostRegistrationRequest, HostRegistrationResponse
from metrics.schema import BatchEnvelope, SampleIn
from metrics.views import BatchAccepted
from twin.snapshot import TwinState

REF = "#/components/schemas/{name}"


class Error(TypedDict):
    """Every error: a machine-readable code and a sentence for people."""

    error: str
    detail: Any


def components_append(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular post-processing hook: add the Structs' and TypedDicts' schemas."""
    _, components = msgspec.json.schema_components(
        [BatchEnvelope, SampleIn, BatchAccepted, TwinState, HostRegistrationRequest, HostRegistrationResponse, Error],
        ref_template=REF,
    )
    # The envelope keeps samples raw to judge each alone; documented, each is a SampleIn.
    batch = components.pop("BatchEnvelope")
    batch["properties"]["samples"] = {"type": "array", "items": {"$ref": REF.format(name="SampleIn")}}
    batch["title"] = "MetricsBatch"
    components["MetricsBatch"] = batch
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(components)
    result["components"].setdefault("securitySchemes", {})["enrollmentKey"] = {"type": "http", "scheme": "bearer"}
    return result
