"""twin.audiences: each live event goes to the readers who could read the same over REST, by the same names."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client
from rest_framework.authtoken.models import Token

from commands.selectors import COMMAND_READ_PERMISSIONS
from twin.audiences import EVENT_PERMISSIONS, LIVE_PERMISSIONS, event_room, reader_rooms
from twin.live.dispatch import SOCKET_EVENTS
from twin.live.emitter import TWIN_DELTA_EVENT, TWIN_STATE_EVENT
from twin.readers import permissions_held, reader_identify, readers_recheck


def test_every_event_the_live_side_sends_has_its_audience_in_the_map():
    sent = {TWIN_STATE_EVENT, TWIN_DELTA_EVENT, *SOCKET_EVENTS.values()}
    assert sent == set(EVENT_PERMISSIONS)


def test_command_updates_need_what_the_commands_api_needs():
    assert (
        EVENT_PERMISSIONS["command-update"]
        == COMMAND_READ_PERMISSIONS
        == (
            "commands.view_command",
            "commands.add_command",
        )
    )
    assert (
        reader_rooms(["commands.view_command"])
        == reader_rooms(["commands.add_command"])
        == {event_room("command-update")}
    )
    assert reader_rooms([]) == frozenset() and event_room("host-status") is None


def _perm(name: str) -> Permission:
    app_label, codename = name.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


@pytest.fixture
def people(django_user_model):
    make = django_user_model.objects.create_user
    direct = make("direct", password="pw-for-tests-only", is_staff=True)
    direct.user_permissions.add(_perm("commands.view_command"))
    member = make("member", password="pw-for-tests-only")
    group = Group.objects.create(name="operators")
    group.permissions.add(_perm("commands.add_command"))
    member.groups.add(group)
    other_group = make("other-group", password="pw-for-tests-only")
    unrelated = Group.objects.create(name="unrelated")
    unrelated.permissions.add(_perm("commands.view_invocation"))
    other_group.groups.add(unrelated)
    return [
        direct,
        member,
        other_group,
        make("staff-only", password="pw-for-tests-only", is_staff=True),
        make("plain", password="pw-for-tests-only"),
        django_user_model.objects.create_superuser("root", password="pw-for-tests-only"),
        make("inactive", password="pw-for-tests-only", is_active=False, is_superuser=True),
    ]


@pytest.mark.django_db
def test_permissions_held_in_bulk_are_what_has_perm_says_for_each_user(people, django_user_model):
    held = permissions_held(people)
    for user in people:
        fresh = django_user_model.objects.get(pk=user.pk)  # no permission cache
        assert held[user.pk] == {name for name in LIVE_PERMISSIONS if fresh.has_perm(name)}, user.username
    by_name = {user.username: held[user.pk] for user in people}
    assert by_name["direct"] == {"commands.view_command"} and by_name["member"] == {"commands.add_command"}
    assert by_name["staff-only"] == by_name["plain"] == by_name["other-group"] == by_name["inactive"] == frozenset()


@pytest.mark.django_db
def test_a_readers_permissions_are_read_when_admitted_and_again_at_each_check(people, django_assert_max_num_queries):
    direct = people[0]
    token = Token.objects.create(user=direct).key
    browser = Client()
    browser.force_login(people[1])
    by_token = reader_identify(token=token, session_key=None)
    by_session = reader_identify(token=None, session_key=browser.cookies["sessionid"].value)
    assert by_token.permissions == {"commands.view_command"}
    assert by_session.permissions == {"commands.add_command"}
    direct.user_permissions.clear()
    people[1].groups.clear()
    from django.utils import timezone

    with django_assert_max_num_queries(7):
        again = readers_recheck(credentials={by_token.credential, by_session.credential}, now=timezone.now())
    assert {reader.permissions for reader in again.values()} == {frozenset()}


def test_alert_updates_go_to_whoever_may_read_get_api_alerts():
    from alerts.views import AlertsView
    from twin.permissions import ReadAccess

    assert AlertsView().get_permissions()[0].__class__ is ReadAccess
    assert EVENT_PERMISSIONS["alert-update"] == () and event_room("alert-update") is None
