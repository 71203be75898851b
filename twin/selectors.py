"""Reads the live side needs from the database, as whole sync functions."""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie
from importlib import import_module

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.utils.crypto import constant_time_compare
from rest_framework.authtoken.models import Token


def session_key_from_cookie_header(cookie_header: str) -> str | None:
    """The Django session key in a raw ``Cookie`` header, if any."""
    try:
        morsel = SimpleCookie(cookie_header).get(settings.SESSION_COOKIE_NAME)
    except CookieError:
        return None
    return morsel.value if morsel else None


def reader_identify(*, token: str | None, session_key: str | None) -> str | None:
    """The username of an active user behind an API token or a session, or None.

    The session check follows ``django.contrib.auth.get_user``: a session whose
    password hash no longer matches (the password changed) does not count.
    """
    if token:
        found = Token.objects.select_related("user").filter(key=token).first()
        if found is not None and found.user.is_active:
            return found.user.get_username()
    if session_key:
        session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
        user_id = session.get(SESSION_KEY)
        if user_id is None or session.get(BACKEND_SESSION_KEY) not in settings.AUTHENTICATION_BACKENDS:
            return None
        user = get_user_model()._default_manager.filter(pk=user_id, is_active=True).first()
        if user is not None and constant_time_compare(session.get(HASH_SESSION_KEY, ""), user.get_session_auth_hash()):
            return user.get_username()
    return None
