"""The one refusal every service raises, turned into the JSON error shape by the API's exception handler."""

from __future__ import annotations

from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from common.errors import Refused, json_exception_handler


class _RefusingView(APIView):
    authentication_classes: list = []
    permission_classes: list = []

    def get(self, request):
        raise Refused("not_now", "Not now; try later.", status=409, fields={"state": "busy"}, headers={"X-Why": "busy"})


def test_a_refusal_becomes_the_json_error_shape_with_its_status_fields_and_headers():
    response = _RefusingView.as_view()(APIRequestFactory().get("/"))
    response.render()
    assert response.status_code == 409
    assert response["X-Why"] == "busy"
    assert response.data == {"error": "not_now", "detail": "Not now; try later.", "state": "busy"}


def test_a_subclass_may_fix_its_status_once():
    class Gone(Refused):
        status = 410

    response = json_exception_handler(Gone("gone", "It is gone."), {})
    assert response is not None
    assert (response.status_code, response.data["error"]) == (410, "gone")


def test_a_refusal_without_a_status_is_a_bad_request():
    response = json_exception_handler(Refused("bad", "Bad."), {})
    assert response is not None
    assert response.status_code == 400


def test_a_database_restarting_is_trouble_that_passes_and_a_bug_is_not():
    from django.db import OperationalError, ProgrammingError
    from psycopg_pool import PoolTimeout

    from common.errors import database_trouble, database_unavailable

    restarting = OperationalError("terminating connection due to administrator command")
    assert database_unavailable(restarting) and database_trouble(restarting)
    assert database_unavailable(PoolTimeout("couldn't get a connection after 2.00 sec"))
    locked = OperationalError("database is locked")
    assert database_trouble(locked) and not database_unavailable(locked)
    assert not database_trouble(ProgrammingError("syntax error")) and not database_trouble(ValueError("a bug"))
