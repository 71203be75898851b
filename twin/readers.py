"""Reader authentication: who a live reader is (an API token or a session cookie), and whether they still are.

The live side admits each Socket.IO connection with ``reader_identify`` and
checks every connected reader again with ``readers_recheck``
(``twin.live.guard``). Whole sync functions, run from the async side through
``common.asyncsync.db_call``; Django's middleware never sees Socket.IO traffic,
so these are its checks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user, get_user_model
from django.contrib.auth.models import Group, Permission
from django.http import HttpRequest
from django.http.cookie import parse_cookie
from django.utils.crypto import constant_time_compare
from rest_framework.authtoken.models import Token

from common.auth import token_key_plausible
from common.sessions import session_key_plausible
from twin.audiences import LIVE_PERMISSIONS


@dataclass(frozen=True, slots=True)
class ReaderCredential:
    """What a live connection was admitted with (an API token or a session), to be checked again later."""

    user_id: int
    token: str | None = None
    session_key: str | None = None


@dataclass(frozen=True, slots=True)
class Reader:
    """Who opened a live connection: an active user allowed to read the twin, and how they proved it.

    ``permissions``: which of the names the live side's audiences depend on
    (``twin.audiences.LIVE_PERMISSIONS``) the user holds now.
    """

    username: str
    permissions: frozenset[str] = frozenset()
    credential: ReaderCredential | None = None


def session_key_from_cookie_header(cookie_header: str) -> str | None:
    """The Django session key in a raw ``Cookie`` header, if any that could be one.

    Django's own cookie parser: it never raises, whatever the header holds.
    """
    key = parse_cookie(cookie_header).get(settings.SESSION_COOKIE_NAME)
    return key if session_key_plausible(key) else None


def reader_identify(*, token: Any, session_key: Any) -> Reader | None:
    """The active user behind an API token or a session, or None.

    Either may be anything a client sent: a value that could not be a stored
    token or session key is no credential, and never reaches the database.
    A session is checked by Django's own ``get_user``, exactly as for a page
    request: a session whose password hash no longer matches (the password
    changed) or whose user is inactive does not count.
    """
    if token_key_plausible(token):
        found = Token.objects.select_related("user").filter(key=token).first()
        if found is not None and found.user.is_active:
            return Reader(
                username=found.user.get_username(),
                permissions=permissions_held([found.user])[found.user.pk],
                credential=ReaderCredential(user_id=found.user.pk, token=token),
            )
    if session_key_plausible(session_key):
        request = HttpRequest()
        request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
        user = get_user(request)
        if user.is_authenticated:
            return Reader(
                username=user.get_username(),
                permissions=permissions_held([user])[user.pk],
                credential=ReaderCredential(user_id=user.pk, session_key=session_key),
            )
    return None


def readers_recheck(*, credentials: Iterable[ReaderCredential], now: datetime) -> dict[ReaderCredential, Reader]:
    """The credentials still valid now, each with its reader (and the permissions it holds) as of now.

    The others are missing. Seven queries whatever the number of connections
    (tokens, sessions, users, and four for their permissions: ``permissions_held``):
    - a token counts while it exists for its user and the user is active
      (deleting it, or deactivating the user, ends it);
    - a session counts while it exists unexpired (logging out deletes it), its
      user is active and its password hash still matches the user's (changing
      the password ends the user's other sessions), as Django's ``get_user``
      decides for a page.
    """
    wanted = set(credentials)
    tokens = {c.token for c in wanted if c.token}
    session_keys = {c.session_key for c in wanted if c.session_key}
    live_tokens = set(Token.objects.filter(key__in=tokens).values_list("key", "user_id")) if tokens else set()
    sessions = _sessions_decoded(session_keys, now=now) if session_keys else {}
    user_ids = {c.user_id for c in wanted}
    users = {u.pk: u for u in get_user_model().objects.filter(pk__in=user_ids, is_active=True)}
    held = permissions_held(users.values())
    valid: dict[ReaderCredential, Reader] = {}
    for credential in wanted:
        user = users.get(credential.user_id)
        if user is None:
            continue
        if credential.token:
            ok = (credential.token, credential.user_id) in live_tokens
        else:
            ok = _session_still_logs_in(sessions.get(credential.session_key or ""), user)
        if ok:
            valid[credential] = Reader(username=user.get_username(), permissions=held[user.pk], credential=credential)
    return valid


def permissions_held(users: Iterable[Any], names: Iterable[str] = LIVE_PERMISSIONS) -> dict[int, frozenset[str]]:
    """For each active user, which of ``names`` they hold, as ``user.has_perm`` decides for the REST views.

    The project's backends are django-axes' (which grants nothing) and Django's
    ``ModelBackend``: an active superuser holds every permission, another
    active user those given to them or to one of their groups. Four
    single-table queries whatever the number of users, where ``has_perm``
    costs two per user (tests/twin/test_audiences.py holds the two equal).
    """
    users, names = list(users), tuple(names)
    wanted = {tuple(name.split(".", 1)) for name in names}
    out: dict[int, frozenset[str]] = {u.pk: frozenset() for u in users}
    active = [u for u in users if u.is_active]
    for user in active:
        if user.is_superuser:
            out[user.pk] = frozenset(names)
    others = [u.pk for u in active if not u.is_superuser]
    if not (others and wanted):
        return out
    user_model = get_user_model()
    by_id = {
        pk: f"{app_label}.{codename}"
        for pk, app_label, codename in Permission.objects.filter(
            content_type__app_label__in={a for a, _ in wanted}, codename__in={c for _, c in wanted}
        ).values_list("pk", "content_type__app_label", "codename")
        if (app_label, codename) in wanted
    }
    if not by_id:
        return out
    granted: dict[int, set[str]] = {pk: set() for pk in others}
    direct = user_model.user_permissions.through.objects.filter(user_id__in=others, permission_id__in=by_id)
    for user_id, permission_id in direct.values_list("user_id", "permission_id"):
        granted[user_id].add(by_id[permission_id])
    memberships = list(user_model.groups.through.objects.filter(user_id__in=others).values_list("user_id", "group_id"))
    if memberships:
        group_grants: dict[int, set[str]] = {}
        rows = Group.permissions.through.objects.filter(
            group_id__in={g for _, g in memberships}, permission_id__in=by_id
        ).values_list("group_id", "permission_id")
        for group_id, permission_id in rows:
            group_grants.setdefault(group_id, set()).add(by_id[permission_id])
        for user_id, group_id in memberships:
            granted[user_id] |= group_grants.get(group_id, set())
    for pk, names_held in granted.items():
        out[pk] = frozenset(names_held)
    return out


def _sessions_decoded(keys: set[str], *, now: datetime) -> dict[str, dict[str, Any]]:
    """The unexpired sessions among ``keys``, decoded, in one query (database-backed sessions)."""
    store_class = import_module(settings.SESSION_ENGINE).SessionStore
    model = store_class.get_model_class()
    store = store_class()
    rows = model.objects.filter(session_key__in=keys, expire_date__gt=now).values_list("session_key", "session_data")
    return {key: store.decode(data) for key, data in rows}


def _session_still_logs_in(session: dict[str, Any] | None, user: Any) -> bool:
    """What ``django.contrib.auth.get_user`` would decide for this session and (active) user."""
    if not session or str(session.get(SESSION_KEY)) != str(user.pk):
        return False
    if session.get(BACKEND_SESSION_KEY) not in settings.AUTHENTICATION_BACKENDS:
        return False
    session_hash = session.get(HASH_SESSION_KEY)
    if not session_hash:
        return False
    if constant_time_compare(session_hash, user.get_session_auth_hash()):
        return True
    return any(constant_time_compare(session_hash, h) for h in user.get_session_auth_fallback_hash())
