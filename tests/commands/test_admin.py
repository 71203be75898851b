"""The admin: send a command from the host list, switch shell per host (audited), follow and cancel commands."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.urls import reverse

from commands.models import Command, Invocation, ShellAccess
from hosts.models import Host
from tests.commands.conftest import grant
from tests.conftest import sample_dict

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("open_twin")]
HOSTS = reverse("admin:hosts_host_changelist")


@pytest.fixture
def fleet(post_batch) -> list[int]:
    post_batch([sample_dict("titan-01"), sample_dict("titan-02", rack="R2")])
    return list(Host.objects.filter(hostname__startswith="titan").order_by("hostname").values_list("pk", flat=True))


def _act(client, action: str, pks: list[int], **form):
    return client.post(HOSTS, {"action": action, ACTION_CHECKBOX_NAME: pks, **form})


def test_send_a_command_to_the_selected_hosts_asks_then_creates_it(admin_client, admin_user, fleet):
    ask = _act(admin_client, "send_command", fleet)
    assert ask.status_code == 200 and b"Send a command" in ask.content and b"titan-02" in ask.content
    sent = _act(
        admin_client,
        "send_command",
        fleet,
        apply="1",
        command_action="set-interval",
        args='{"seconds": 15}',
        timeout_seconds="60",
        delivery_timeout_seconds="300",
        max_concurrency="1",
        max_errors="0",
        comment="from the admin",
    )
    assert sent.status_code == 302, sent.content
    command = Command.objects.get()
    assert sent["Location"] == reverse("admin:commands_command_change", args=[command.pk])
    assert (command.action, command.args, command.issued_by_name) == ("set-interval", {"seconds": 15}, "admin")
    assert Invocation.objects.filter(command=command).count() == 2
    page = admin_client.get(sent["Location"])
    assert page.status_code == 200 and b"titan-01" in page.content


def test_a_refused_command_is_shown_on_the_form_and_nothing_is_sent(admin_client, fleet):
    form = {"command_action": "set-interval", "args": '{"seconds": 0}', "timeout_seconds": "60"}
    form |= {"delivery_timeout_seconds": "300", "max_concurrency": "50", "max_errors": "0"}
    response = _act(admin_client, "send_command", fleet, apply="1", **form)
    assert response.status_code == 200 and b"invalid_args" in response.content
    assert not Command.objects.exists()


def test_the_action_is_offered_only_to_those_who_may_send_commands(client, django_user_model, fleet):
    user = django_user_model.objects.create_user("viewer", password="a-long-password-1", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_host"))
    client.force_login(user)
    assert b'value="send_command"' not in client.get(HOSTS).content
    grant(user, "add_command")
    assert b'value="send_command"' in client.get(HOSTS).content
    assert b'value="shell_enable"' not in client.get(HOSTS).content


def test_enabling_shell_is_recorded_with_who_and_when_and_disabling_keeps_the_record(admin_client, fleet):
    _act(admin_client, "shell_enable", fleet[:1])
    _act(admin_client, "shell_enable", fleet[:1])  # already enabled: no second grant
    grant_ = ShellAccess.objects.get()
    assert (grant_.host_id, grant_.granted_by, grant_.revoked_at) == (fleet[0], "admin", None)
    listed = admin_client.get(HOSTS)
    assert listed.status_code == 200
    _act(admin_client, "shell_disable", fleet)
    grant_.refresh_from_db()
    assert grant_.revoked_by == "admin" and grant_.revoked_at is not None
    assert admin_client.get(reverse("admin:commands_shellaccess_changelist")).status_code == 200


def test_commands_are_listed_by_state_with_each_invocations_output_and_can_be_cancelled(admin_client, fleet):
    _act(
        admin_client,
        "send_command",
        fleet,
        apply="1",
        command_action="ping",
        args="{}",
        timeout_seconds="60",
        delivery_timeout_seconds="300",
        max_concurrency="50",
        max_errors="0",
    )
    command = Command.objects.get()
    Invocation.objects.filter(command=command, hostname="titan-01").update(state="succeeded", output="pong\nfrom titan")
    commands = reverse("admin:commands_command_changelist")
    assert f">{command.pk}<".encode() in admin_client.get(commands, {"state": "in_progress"}).content
    assert b"in_progress" in admin_client.get(commands).content
    assert f">{command.pk}<".encode() not in admin_client.get(commands, {"state": "completed"}).content
    invocation = Invocation.objects.get(command=command, hostname="titan-01")
    page = admin_client.get(reverse("admin:commands_invocation_change", args=[invocation.pk]))
    assert page.status_code == 200 and b"pong\nfrom titan" in page.content
    cancelled = admin_client.post(commands, {"action": "cancel", ACTION_CHECKBOX_NAME: [command.pk]})
    assert cancelled.status_code == 302
    assert Invocation.objects.get(command=command, hostname="titan-02").state == "cancelled"
    assert f">{command.pk}<".encode() in admin_client.get(commands, {"state": "cancelled"}).content
