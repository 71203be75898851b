"""Collectors authenticate with ``Authorization: Bearer <token>`` (``create_collector_token``)."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from collectors.selectors import CollectorIdentity, collector_identity_for_token

CHALLENGE = 'Bearer realm="twin collectors"'


class CollectorTokenAuthentication(BaseAuthentication):
    """A collector token as a bearer token: its SHA-256 is looked up; a revoked one is refused."""

    def authenticate(self, request: Request) -> tuple[CollectorIdentity, CollectorIdentity] | None:
        parts = get_authorization_header(request).split()
        if not parts:
            return None
        if parts[0].lower() != b"bearer" or len(parts) != 2:
            raise AuthenticationFailed(
                "Send the collector token as 'Authorization: Bearer <token>'.", code="not_authenticated"
            )
        try:
            token = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise AuthenticationFailed("The bearer token is not ASCII.", code="not_authenticated") from None
        identity = collector_identity_for_token(token)
        if identity is None:
            raise AuthenticationFailed("Unknown collector token.", code="not_authenticated")
        if identity.revoked:
            raise AuthenticationFailed(f"The collector token {identity.name!r} is revoked.", code="token_revoked")
        return identity, identity

    def authenticate_header(self, request: Request) -> str:
        return CHALLENGE


class CollectorWriteAccess(BasePermission):
    """Only a collector token writes through remote-write (no session, no reader token, no agent)."""

    message = (
        "Remote-write needs a collector token: 'Authorization: Bearer <token>' (manage.py create_collector_token)."
    )

    def has_permission(self, request: Request, view: object) -> bool:
        return isinstance(request.auth, CollectorIdentity)


class CollectorTokenScheme(OpenApiAuthenticationExtension):
    """The OpenAPI security scheme of ``CollectorTokenAuthentication`` (loaded with this module)."""

    target_class = CollectorTokenAuthentication
    name = "CollectorToken"

    def get_security_definition(self, auto_schema: object) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "A token from manage.py create_collector_token."}
