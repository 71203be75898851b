"""Past the door: the command endpoints fuzzed as an operator who may do everything, and as the target's agent.

The shared fuzz test (tests/test_openapi_fuzz.py) calls them anonymously, so it
only reaches the 401. Here the same schema drives requests that get in.
"""

from __future__ import annotations

import json
import os

import orjson
import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token

from commands.models import Invocation
from hosts.models import Host
from tests.commands.conftest import result_path
from tests.test_openapi_fuzz import CHECKS

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application()).include(
    path_regex=r"^/api/commands(/actions|/\{command_id\}(/cancel)?)?$"
)


@pytest.fixture
def wsgi_in_test_transaction():
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def superuser_token(django_user_model) -> str:
    user = django_user_model.objects.create_superuser("root", password="a-long-password-1")
    return Token.objects.create(user=user).key


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@pytest.mark.django_db
@pytest.mark.usefixtures("wsgi_in_test_transaction")
def test_the_operators_endpoints_keep_their_schema_for_an_operator_who_may_do_everything(case, superuser_token):
    # Not through the test client, which would plug back the signal that closes connections after requests.
    Host.objects.get_or_create(hostname="titan-01")
    case.call_and_validate(headers={"Authorization": f"Token {superuser_token}"}, checks=CHECKS)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
REPORTS = (
    st.fixed_dictionaries(
        {},
        optional={
            "status": st.sampled_from(["running", "succeeded", "failed", "other"]) | JSON,
            "exit_code": st.integers() | JSON,
            "output": st.text() | JSON,
            "data": st.dictionaries(st.text(max_size=8), JSON, max_size=3) | JSON,
            "started_at": st.datetimes().map(lambda d: d.isoformat() + "Z") | st.text(max_size=30) | JSON,
            "finished_at": st.datetimes().map(lambda d: d.isoformat() + "+05:00") | JSON,
        },
    )
    | JSON
)


@pytest.mark.django_db
def test_whatever_the_target_agent_reports_is_answered_without_a_server_error(make_agent):
    agent = make_agent("titan-01")
    operator = agent.client
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_superuser("root", password="a-long-password-1")
    operator.force_login(user)
    body = b'{"action": "ping", "targets": {"hosts": ["titan-01"]}}'
    command = operator.post("/api/commands", data=body, content_type="application/json").json()
    operator.logout()

    @given(report=REPORTS)
    @settings(max_examples=EXAMPLES * 5, deadline=None, suppress_health_check=list(HealthCheck))
    def check(report) -> None:
        Invocation.objects.filter(command_id=command["id"]).update(state="dispatched")
        # The standard library writes integers of any size, as some agents will.
        body = json.dumps(report).encode()
        response = agent.client.post(
            result_path(command["id"]), data=body, content_type="application/json", headers=agent.headers(body)
        )
        assert response.status_code in (200, 400, 409), (report, response.content)
        if response.status_code != 200:
            assert set(orjson.loads(response.content)) >= {"error", "detail"}

    check()
