"""OpenAPI components for the shapes declared as msgspec Structs and TypedDicts.

The request and response shapes are declared once, in the code that reads or
writes them; this hook turns them into JSON Schema for drf-spectacular.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

import msgspec

from alerts.schema import AlertList, RuleDocument, RuleInput, RuleList, RulePatch
from commands.actions import CATALOGUE
from commands.longpoll import PENDING_PATH, WAIT_MAX_SECONDS
from commands.schema import (
    ActionCatalogue,
    CommandCreateRequest,
    CommandDocument,
    CommandList,
    CommandUpdate,
    InvalidTransition,
    InvocationDocument,
    PendingInvocations,
    ResultReport,
)
from facility.power import RackPowerDoc
from facility.views import CapacityAnswer
from hosts.credentials import HEADER_KEY_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP
from hosts.schema import HostRegistrationRequest, HostRegistrationResponse
from metrics.schema import BatchEnvelope, SampleIn
from metrics.views import BatchAccepted, HostSeries, LabelledSeriesList, LabelledSeriesValues
from twin.impact import ImpactDoc, ImpactRequest
from twin.path import PathDoc
from twin.snapshot import TwinState
from twin.views import HostEvents

REF = "#/components/schemas/{name}"


class CommandCreateFields(CommandCreateRequest):
    """The fields of a create request every action shares (``CommandCreateRequest`` adds each action's args)."""


class Error(TypedDict):
    """Every error: a machine-readable code and a sentence for people (and the query parameter at fault)."""

    error: str
    detail: Any
    parameter: NotRequired[str]


def components_append(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular post-processing hook: add the Structs' and TypedDicts' schemas."""
    _, components = msgspec.json.schema_components(
        [
            *(
                BatchEnvelope,
                SampleIn,
                BatchAccepted,
                TwinState,
                HostRegistrationRequest,
                HostRegistrationResponse,
                HostSeries,
                LabelledSeriesList,
                LabelledSeriesValues,
                HostEvents,
                Error,
            ),
            *(RackPowerDoc, CapacityAnswer),
            *(ImpactDoc, ImpactRequest, PathDoc),
            *(CommandCreateFields, CommandDocument, CommandList, InvocationDocument, InvalidTransition, ResultReport),
            *(PendingInvocations, ActionCatalogue, CommandUpdate),
            *(AlertList, RuleInput, RulePatch, RuleDocument, RuleList),
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
    components.update(_command_requests())
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(components)
    result["components"].setdefault("securitySchemes", {})["enrollmentKey"] = {"type": "http", "scheme": "bearer"}
    result.setdefault("paths", {})[PENDING_PATH] = {"get": _pending_operation()}
    return result


def _command_requests() -> dict[str, Any]:
    """Each action's arguments as a component, and a create request per action (``action`` tells them apart).

    The catalogue's Structs give the schemas, so the OpenAPI schema says exactly
    what ``GET /api/commands/actions`` says.
    """
    structs = [spec.args for spec in CATALOGUE.values()]
    _, components = msgspec.json.schema_components(structs, ref_template=REF)
    fields = REF.format(name="CommandCreateFields")
    variants = [
        {
            "title": f"{name} command",
            "allOf": [{"$ref": fields}],
            "properties": {"action": {"const": name}, "args": {"$ref": REF.format(name=spec.args.__name__)}},
        }
        for name, spec in CATALOGUE.items()
    ]
    return {
        **components,
        "CommandCreateRequest": {
            "title": "CommandCreateRequest",
            "description": "POST /api/commands: an action of the catalogue with its arguments, targets and limits.",
            "oneOf": variants,
        },
    }


def _pending_operation() -> dict[str, Any]:
    """The agents' long poll: a bare ASGI endpoint under daphne, so drf-spectacular does not see it."""
    error = {"application/json": {"schema": {"$ref": REF.format(name="Error")}}}
    signature = {
        HEADER_KEY_ID: "The host credential's key id.",
        HEADER_TIMESTAMP: "Unix time in seconds.",
        HEADER_SIGNATURE: "sha256=<hex HMAC-SHA256 of '<timestamp>.GET <path?query>' under the signing secret>.",
    }
    return {
        "operationId": "commands_pending",
        "summary": "An agent waits for its host's invocations (long poll).",
        "description": "Answers as soon as an invocation is waiting for the signing host, or with an empty list "
        "when the wait ends. Handing one out moves it to dispatched; it is handed out again until acknowledged.",
        "tags": ["api"],
        "security": [],
        "parameters": [
            {
                "name": "wait",
                "in": "query",
                "required": False,
                "description": f"Longest wait in seconds, 0 to {WAIT_MAX_SECONDS:g} (default {WAIT_MAX_SECONDS:g}).",
                "schema": {"type": "number", "minimum": 0, "maximum": WAIT_MAX_SECONDS},
            },
            *(
                {"name": name, "in": "header", "required": False, "description": text, "schema": {"type": "string"}}
                for name, text in signature.items()
            ),
        ],
        "responses": {
            "200": {
                "description": "The invocations waiting for this host (possibly none).",
                "content": {"application/json": {"schema": {"$ref": REF.format(name="PendingInvocations")}}},
            },
            "400": {"description": "wait is not 0 to 25 seconds.", "content": error},
            "401": {"description": "Not signed by a host's valid credential.", "content": error},
            "403": {"description": "The host waits for an admin's approval.", "content": error},
            "503": {"description": "The database cannot be reached.", "content": error},
        },
    }
