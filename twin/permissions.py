"""Who may read the twin over HTTP."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from rest_framework.permissions import BasePermission

if TYPE_CHECKING:  # DRF imports this module while rest_framework.views loads.
    from rest_framework.request import Request
    from rest_framework.views import APIView


class ReadAccess(BasePermission):
    """A logged-in user or an API token's user; anyone with ``TWIN_PUBLIC_READ``.

    Agents' signatures are not among the authentication classes of read
    views, so an agent credential never reads.
    """

    message = "Log in or send 'Authorization: Token <key>' to read the twin."

    def has_permission(self, request: Request, view: APIView) -> bool:
        if settings.TWIN_PUBLIC_READ:
            return True
        user = request.user
        return bool(user and user.is_authenticated)
