"""Operators, agents and commands for the command lifecycle's tests."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from rest_framework.authtoken.models import Token


def grant(user, *codenames: str) -> None:
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="commands", codename__in=codenames))


class Operator:
    """A user calling the operators' API with an API token, as a dashboard or a script does."""

    def __init__(self, user) -> None:
        self.user = user
        self.client = Client(headers={"Authorization": f"Token {Token.objects.create(user=user).key}"})

    def send(self, *, headers: dict[str, str] | None = None, **document: Any):
        """``POST /api/commands`` with this document (targets default to titan-01)."""
        document.setdefault("targets", {"hosts": ["titan-01"]})
        body = orjson.dumps(document)
        return self.client.post("/api/commands", data=body, content_type="application/json", headers=headers or {})

    def read(self, command_id: int) -> dict[str, Any]:
        response = self.client.get(f"/api/commands/{command_id}")
        assert response.status_code == 200, response.content
        return response.json()

    def cancel(self, command_id: int):
        return self.client.post(f"/api/commands/{command_id}/cancel")


@pytest.fixture
def operator(django_user_model) -> Operator:
    """alice, who may send (and so read and cancel) commands, but not shell ones."""
    user = django_user_model.objects.create_user("alice", password="a-long-password-1")
    grant(user, "add_command", "view_command")
    return Operator(user)


@pytest.fixture
def shell_operator(django_user_model) -> Operator:
    """root-ops, who may also send shell commands."""
    user = django_user_model.objects.create_user("root-ops", password="a-long-password-1")
    grant(user, "add_command", "view_command", "run_shell")
    return Operator(user)


@pytest.fixture
def agents(make_agent):
    """Registered, signing agents by hostname: ``agents("titan-01", "titan-02")``."""

    def make(*hostnames: str):
        made = [make_agent(h) for h in hostnames]
        return made[0] if len(made) == 1 else made

    return make


def result_path(command_id: int) -> str:
    return f"/api/commands/{command_id}/result"
