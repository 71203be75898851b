"""Reads the live side needs from the database, as whole sync functions."""

from __future__ import annotations

from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from importlib import import_module

from django.conf import settings
from django.contrib.auth import get_user
from django.http import HttpRequest
from rest_framework.authtoken.models import Token


@dataclass(frozen=True, slots=True)
class Reader:
    """Who opened a live connection: an active user allowed to read the twin."""

    username: str
    is_staff: bool


def session_key_from_cookie_header(cookie_header: str) -> str | None:
    """The Django session key in a raw ``Cookie`` header, if any."""
    try:
        morsel = SimpleCookie(cookie_header).get(settings.SESSION_COOKIE_NAME)
    except CookieError:
        return None
    return morsel.value if morsel else None


def reader_identify(*, token: str | None, session_key: str | None) -> Reader | None:
    """The active user behind an API token or a session, or None.

    A session is checked by Django's own ``get_user``, exactly as for a page
    request: a session whose password hash no longer matches (the password
    changed) or whose user is inactive does not count.
    """
    if token:
        found = Token.objects.select_related("user").filter(key=token).first()
        if found is not None and found.user.is_active:
            return Reader(username=found.user.get_username(), is_staff=found.user.is_staff)
    if session_key:
        request = HttpRequest()
        request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
        user = get_user(request)
        if user.is_authenticated:
            return Reader(username=user.get_username(), is_staff=user.is_staff)
    return None
