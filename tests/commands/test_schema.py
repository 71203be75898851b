"""The OpenAPI schema describes every command endpoint, and each action's arguments as the catalogue serves them."""

from __future__ import annotations

import pytest

from commands.actions import CATALOGUE

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(client) -> dict:
    return client.get("/api/schema/?format=json").json()


def test_every_command_endpoint_is_in_the_schema(schema):
    operations = {(path, method) for path, item in schema["paths"].items() for method in item}
    assert operations >= {
        ("/api/commands", "get"),
        ("/api/commands", "post"),
        ("/api/commands/actions", "get"),
        ("/api/commands/pending", "get"),
        ("/api/commands/{command_id}", "get"),
        ("/api/commands/{command_id}/cancel", "post"),
        ("/api/commands/{command_id}/result", "post"),
    }
    batch_answer = schema["components"]["schemas"]["BatchAccepted"]["properties"]
    assert batch_answer["invocations"]["items"] == {"$ref": "#/components/schemas/AgentInvocation"}


def test_each_actions_arguments_are_a_component_equal_to_the_catalogues(schema, operator):
    served = {a["name"]: a["argsSchema"] for a in operator.client.get("/api/commands/actions").json()["actions"]}
    components = schema["components"]["schemas"]
    variants = {v["properties"]["action"]["const"]: v for v in components["CommandCreateRequest"]["oneOf"]}
    assert set(variants) == set(CATALOGUE) == set(served)
    for name, spec in CATALOGUE.items():
        ref = variants[name]["properties"]["args"]["$ref"]
        assert ref == f"#/components/schemas/{spec.args.__name__}"
        assert components[spec.args.__name__] == served[name]
