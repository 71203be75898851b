"""schemathesis against our own OpenAPI schema: no 5xx, no answer outside the schema,
no request accepted that the schema forbids. Bounded so CI stays fast."""

from __future__ import annotations

import os

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture
def wsgi_in_test_transaction():
    """Keep the WSGI handler from closing the test's connection, as Django's test client does."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


# The schema view reads no database: it can be loaded when the module is.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())


@schema.parametrize()
# 40 examples an operation, the same ones every run unless FUZZ_EXPLORE is set
# (tests/conftest.py); FUZZ_EXAMPLES=1000 FUZZ_EXPLORE=1 for a deeper run.
@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "40")), deadline=None, suppress_health_check=list(HealthCheck)
)
@pytest.mark.django_db
@pytest.mark.usefixtures("open_twin", "wsgi_in_test_transaction")
def test_the_api_keeps_its_own_schema(case):
    case.call_and_validate(checks=CHECKS)
