"""HTTP entry point for agents registering their hosts."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.formats import iso_utc
from common.http import MalformedBody, json_decoded
from hosts.schema import HostRegistrationResponse, registration_validate
from hosts.services import RegistrationRefused, enrollment_key_check, host_register

# A registration is a few hundred bytes: its body, inflated or not, may be at most this.
REGISTRATION_MAX_BYTES = 64 * 1024


class HostRegisterView(APIView):
    """``POST /api/hosts/register``: an agent trades an enrollment key for its host's credential.

    A refusal is a ``RegistrationRefused``, answered by the API's exception handler.
    """

    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(
        operation_id="hosts_register",
        request={"application/json": {"$ref": "#/components/schemas/HostRegistrationRequest"}},
        responses={
            200: {"$ref": "#/components/schemas/HostRegistrationResponse"},
            201: {"$ref": "#/components/schemas/HostRegistrationResponse"},
            400: {"$ref": "#/components/schemas/Error"},
            401: {"$ref": "#/components/schemas/Error"},
            403: {"$ref": "#/components/schemas/Error"},
            413: {"$ref": "#/components/schemas/Error"},
            415: {"$ref": "#/components/schemas/Error"},
            503: {"$ref": "#/components/schemas/Error"},
        },
        auth=[{"enrollmentKey": []}],
    )
    def post(self, request: Request) -> Response:
        scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise RegistrationRefused(
                "enrollment_key_required", "Send the enrollment key as 'Authorization: Bearer <key>'."
            )
        now = timezone.now()
        # The key first: a stranger's body is never read nor inflated.
        enrollment_key_check(secret=secret.strip(), now=now)
        checked = registration_validate(json_decoded(request, limit=REGISTRATION_MAX_BYTES))
        if isinstance(checked, str):
            raise MalformedBody(checked, code="invalid_registration")
        registration = host_register(enrollment_secret=secret.strip(), request=checked, now=now)
        body: HostRegistrationResponse = {
            "hostname": registration.host.hostname,
            "keyId": registration.key_id,
            "signingSecret": registration.signing_secret,
            "approved": registration.host.approved,
            "heartbeatIntervalSeconds": settings.TWIN_HEARTBEAT_SECONDS,
            "signatureWindowSeconds": settings.TWIN_SIGNATURE_WINDOW_SECONDS,
            "twinId": settings.TWIN_ID,
            "serverTime": iso_utc(now),
        }
        return Response(body, status=status.HTTP_201_CREATED if registration.created else status.HTTP_200_OK)
