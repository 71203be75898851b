"""schemathesis against our own OpenAPI schema: no 5xx, no answer outside the schema,
no request accepted that the schema forbids. Bounded so CI stays fast."""

from __future__ import annotations

import os
import uuid

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
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


def _write_bodies() -> st.SearchStrategy[bytes]:
    """Remote-write bodies: arbitrary bytes, snappy around arbitrary bytes, and real node_exporter scrapes."""
    import cramjam

    from tests.collectors.writes import node_scrape, write_body

    scrapes = st.integers(min_value=0, max_value=2**41).map(lambda at: write_body(node_scrape(at)))
    wrapped = st.binary(max_size=512).map(lambda raw: bytes(cramjam.snappy.compress_raw(raw)))
    return st.one_of(st.binary(max_size=512), wrapped, scrapes)


schemathesis.openapi.media_type("application/x-protobuf", _write_bodies())


@schema.parametrize()
# 40 examples an operation, the same ones every run unless FUZZ_EXPLORE is set
# (tests/conftest.py); FUZZ_EXAMPLES=1000 FUZZ_EXPLORE=1 for a deeper run.
@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "40")), deadline=None, suppress_health_check=list(HealthCheck)
)
@pytest.mark.django_db
@pytest.mark.usefixtures("open_twin", "wsgi_in_test_transaction")
def test_the_api_keeps_its_own_schema(case):
    if case.path == "/api/v1/write":
        from collectors.services import collector_token_create

        # With a valid collector token, so the bodies reach the decoder, not only the 401.
        case.headers = {
            **(case.headers or {}),
            "Authorization": f"Bearer {collector_token_create(name=f'fuzz-{uuid.uuid4().hex}')[1]}",
        }
    case.call_and_validate(checks=CHECKS)
