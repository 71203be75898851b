"""HTTP entry points of the command lifecycle: operators send, list, read and cancel; agents poll and report."""

from __future__ import annotations

import re

import msgspec
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotAuthenticated, NotFound
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from commands.longpoll import pending_answer
from commands.models import ID_MAX, CommandState
from commands.schema import CommandCreateRequest, ResultReport
from commands.selectors import (
    ADD_PERMISSION,
    LIST_LIMIT_DEFAULT,
    LIST_LIMIT_MAX,
    CommandFilters,
    action_catalogue,
    command_document,
    commands_list,
    commands_readable_by,
    invocation_documents,
)
from commands.services import command_cancel, command_create, invocation_report, request_fingerprint
from common.asyncsync import request_call
from common.http import MalformedBody, json_decoded
from common.jsondecode import JsonRefused, json_decode
from common.params import param_int
from hosts.authentication import AgentSignatureAuthentication
from hosts.credentials import HEADER_KEY_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP
from hosts.selectors import AgentIdentity

IDEMPOTENCY_HEADER = "Idempotency-Key"
# Printable ASCII, as the header's draft standard and Stripe's keys.
IDEMPOTENCY_KEY_RE = re.compile(r"^[\x20-\x7e]{1,128}$")
# Filters are names: no control characters (PostgreSQL cannot even compare a NUL).
FILTER_RE = re.compile(r"^[^\x00-\x1f\x7f]{1,253}$")
# What the list answers a malformed filter (docs/api.md).
BAD_FILTER = "invalid_filter"

# Through common.jsondecode: the one depth limit, and no client fault escaping as a 500.
_COMMAND_DECODER = msgspec.json.Decoder(CommandCreateRequest)
_RESULT_DECODER = msgspec.json.Decoder(ResultReport)

REF = "#/components/schemas/{}"
ERROR = {"$ref": REF.format("Error")}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(name)}


class OperatorAccess(BasePermission):
    """Reading commands needs ``commands.view_command`` (or add); sending and cancelling ``commands.add_command``."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if request.method in SAFE_METHODS:
            return commands_readable_by(user)
        return user.has_perm(ADD_PERMISSION)


class SignedAgent(BasePermission):
    """Only a host's own agent, by its signature: there is no open mode for commands."""

    message = (
        f"Sign the request ({HEADER_KEY_ID}, {HEADER_TIMESTAMP}, {HEADER_SIGNATURE}): "
        "only a host's own agent reports on its invocations."
    )

    def has_permission(self, request: Request, view: APIView) -> bool:
        return isinstance(request.auth, AgentIdentity)


class CommandsView(APIView):
    """``GET /api/commands`` (filters, newest first) and ``POST /api/commands`` (send a command)."""

    permission_classes = [OperatorAccess]

    @extend_schema(
        operation_id="commands_list",
        parameters=[
            OpenApiParameter("host", str, description="Commands with an invocation on this host (each carries it)."),
            OpenApiParameter("rack", str, description="Commands with an invocation on a host of this rack."),
            OpenApiParameter("state", str, enum=list(CommandState.values), description="The command's derived state."),
            OpenApiParameter("action", str, description="The action's name."),
            OpenApiParameter(
                "limit", int, description=f"Page size, 1 to {LIST_LIMIT_MAX} (default {LIST_LIMIT_DEFAULT})."
            ),
            OpenApiParameter("cursor", str, description="The previous page's next."),
        ],
        responses={200: _ref("CommandList"), 400: ERROR, 401: ERROR, 403: ERROR},
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        text = {}
        for name in ("host", "rack", "state", "action"):
            value = params.get(name)
            if value is not None and not FILTER_RE.match(value):
                raise MalformedBody(f"{name} is not a name.", code=BAD_FILTER)
            text[name] = value or None
        if text["state"] is not None and text["state"] not in CommandState.values:
            raise MalformedBody(f"state is one of {', '.join(CommandState.values)}.", code=BAD_FILTER)
        limit = param_int(
            params, "limit", default=LIST_LIMIT_DEFAULT, minimum=1, maximum=LIST_LIMIT_MAX, code=BAD_FILTER
        )
        cursor = param_int(params, "cursor", default=None, minimum=1, maximum=ID_MAX, code=BAD_FILTER)
        filters = CommandFilters(host=text["host"], rack=text["rack"], state=text["state"], action=text["action"])
        return Response(commands_list(filters=filters, limit=limit, before_id=cursor))

    @extend_schema(
        operation_id="commands_create",
        request={"application/json": _ref("CommandCreateRequest")},
        parameters=[
            OpenApiParameter(
                IDEMPOTENCY_HEADER,
                str,
                OpenApiParameter.HEADER,
                description="Up to 128 printable ASCII characters: the same key (same user, 24 h) "
                "returns the first command with 200, never a second one.",
            )
        ],
        responses={
            200: _ref("CommandDocument"),
            201: _ref("CommandDocument"),
            400: ERROR,
            401: ERROR,
            403: ERROR,
            413: ERROR,
            415: ERROR,
            422: ERROR,
        },
    )
    def post(self, request: Request) -> Response:
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if key is not None and not IDEMPOTENCY_KEY_RE.match(key):
            raise MalformedBody(
                f"{IDEMPOTENCY_HEADER} is 1 to 128 printable ASCII characters.", code="invalid_idempotency_key"
            )
        body = json_decoded(request)
        try:
            decoded = json_decode(_COMMAND_DECODER, body)
        except JsonRefused as exc:
            reason = str(exc)
            raise MalformedBody(reason, code="invalid_args" if "`$.args" in reason else "invalid_command") from None
        created = command_create(
            user=request.user,
            request=decoded,
            now=timezone.now(),
            idempotency_key=key,
            fingerprint=request_fingerprint(body),
        )
        document = command_document(command_id=created.command.pk)
        return Response(document, status=status.HTTP_201_CREATED if created.created else status.HTTP_200_OK)


class CommandDetailView(APIView):
    """``GET /api/commands/{id}``: a command with its invocations and their transitions."""

    permission_classes = [OperatorAccess]

    @extend_schema(
        operation_id="commands_read", responses={200: _ref("CommandDocument"), 401: ERROR, 403: ERROR, 404: ERROR}
    )
    def get(self, request: Request, command_id: int) -> Response:
        document = command_document(command_id=command_id)
        if document is None:
            raise NotFound(f"No command {command_id}.")
        return Response(document)


class CommandCancelView(APIView):
    """``POST /api/commands/{id}/cancel``: cancel every invocation still queued, dispatched or running."""

    permission_classes = [OperatorAccess]

    @extend_schema(
        operation_id="commands_cancel",
        request=None,
        responses={200: _ref("CommandDocument"), 401: ERROR, 403: ERROR, 404: ERROR, 409: _ref("InvalidTransition")},
    )
    def post(self, request: Request, command_id: int) -> Response:
        command_cancel(command_id=command_id, actor=request.user.get_username(), now=timezone.now())
        return Response(command_document(command_id=command_id))


class CommandResultView(APIView):
    """``POST /api/commands/{id}/result``: the target host's agent acknowledges an invocation or reports its outcome."""

    authentication_classes = [AgentSignatureAuthentication]
    permission_classes = [SignedAgent]

    def permission_denied(self, request: Request, message: str | None = None, code: str | None = None) -> None:
        # DRF drops the permission's message for an unauthenticated caller; the agent needs to know it must sign.
        raise NotAuthenticated(message or SignedAgent.message)

    @extend_schema(
        operation_id="commands_result",
        request={"application/json": _ref("ResultReport")},
        responses={
            200: _ref("InvocationDocument"),
            400: ERROR,
            401: ERROR,
            403: ERROR,
            404: ERROR,
            409: _ref("InvalidTransition"),
            413: ERROR,
            415: ERROR,
        },
        auth=[],
    )
    def post(self, request: Request, command_id: int) -> Response:
        body = json_decoded(request)
        try:
            report = json_decode(_RESULT_DECODER, body)
        except JsonRefused as exc:
            raise MalformedBody(str(exc), code="invalid_result") from None
        identity: AgentIdentity = request.auth
        invocation = invocation_report(
            host_id=identity.host_id, command_id=command_id, report=report, now=timezone.now()
        )
        return Response(invocation_documents([invocation])[0])


class ActionCatalogueView(APIView):
    """``GET /api/commands/actions``: every action with the JSON Schema of its arguments."""

    permission_classes = [OperatorAccess]

    @extend_schema(operation_id="commands_actions", responses={200: _ref("ActionCatalogue"), 401: ERROR, 403: ERROR})
    def get(self, request: Request) -> Response:
        return Response(action_catalogue())


async def pending_view(request: HttpRequest) -> HttpResponse:
    """``GET /api/commands/pending`` through Django; under daphne, ``commands.longpoll.pending_asgi`` serves it."""
    if request.method != "GET":
        return JsonResponse(
            {"error": "method_not_allowed", "detail": f"Method {request.method} not allowed; use GET."},
            status=405,
            headers={"Allow": "GET"},
        )
    status_code, body, headers = await pending_answer(
        headers=request.headers,
        full_path=request.get_full_path(),
        wait_raw=request.GET.get("wait"),
        # Through Django (the test client, WSGI): the request's own thread and connection, as for any view.
        run=request_call,
    )
    return JsonResponse(body, status=status_code, headers={"Cache-Control": "no-store", **headers})
