"""HTTP reads of the physical twin: a rack's power, and where a server fits (readers only)."""

from __future__ import annotations

from typing import NotRequired, TypedDict

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.params import InvalidParameter, param_int
from facility.models import RACK_HEIGHT_MAX_U
from facility.power import CapacityFit
from facility.selectors import capacity_find, rack_power, room_exists, site_exists

ERRORS = {code: {"$ref": "#/components/schemas/Error"} for code in (400, 401, 403)}
WATTS_MAX = 100_000
NAME_MAX = 64


class CapacityAnswer(TypedDict):
    """``GET /api/capacity``: the racks a server of ``u`` units drawing ``watts`` fits, best first, with why."""

    u: int
    watts: int
    site: NotRequired[str]
    room: NotRequired[str]
    racksChecked: int
    racksFitting: int
    racks: list[CapacityFit]
    refused: dict[str, int]


class RackPowerView(APIView):
    """``GET /api/racks/{name}/power``: measured and nameplate draw against the feeds, and the A/B check."""

    @extend_schema(
        operation_id="rack_power",
        responses={200: {"$ref": "#/components/schemas/RackPowerDoc"}, **ERRORS, 404: ERRORS[400]},
    )
    def get(self, request: Request, name: str) -> Response:
        doc = rack_power(name=name)
        if doc is None:
            raise NotFound(f"No rack named {name[:NAME_MAX]}.")
        return Response(doc)


def _name_param(request: Request, name: str) -> str | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not raw or len(raw) > NAME_MAX:
        raise InvalidParameter(name, f"{name} must be 1 to {NAME_MAX} characters.")
    return raw


class CapacityView(APIView):
    """``GET /api/capacity?u=2&watts=800``: where a server fits (contiguous units, power after failover)."""

    @extend_schema(
        operation_id="capacity",
        parameters=[
            OpenApiParameter("u", int, required=True, description=f"Height, units (1-{RACK_HEIGHT_MAX_U})."),
            OpenApiParameter("watts", int, required=True, description=f"Draw, watts (0-{WATTS_MAX})."),
            OpenApiParameter("site", str, description="Only racks of this site."),
            OpenApiParameter("room", str, description="Only racks of this room."),
            OpenApiParameter("limit", int, description="At most this many racks, the best (1-1000, default 20)."),
        ],
        responses={200: {"$ref": "#/components/schemas/CapacityAnswer"}, **ERRORS},
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        query = request.query_params
        for required in ("u", "watts"):
            if required not in query:
                raise InvalidParameter(required, f"{required} is required: e.g. /api/capacity?u=2&watts=800.")
        u = param_int(query, "u", default=None, minimum=1, maximum=RACK_HEIGHT_MAX_U)
        watts = param_int(query, "watts", default=None, minimum=0, maximum=WATTS_MAX)
        limit = param_int(query, "limit", default=20, minimum=1, maximum=1000) or 20
        site, room = _name_param(request, "site"), _name_param(request, "room")
        if site is not None and not site_exists(name=site):
            raise InvalidParameter("site", f"No site named {site!r}.")
        if room is not None and not room_exists(name=room, site=site):
            raise InvalidParameter("room", f"No room named {room!r}" + (f" in site {site!r}." if site else "."))
        assert u is not None and watts is not None
        fits, checked, refused = capacity_find(u=u, watts=watts, site=site, room=room)
        body: CapacityAnswer = {"u": u, "watts": watts}  # type: ignore[typeddict-item]
        if site is not None:
            body["site"] = site
        if room is not None:
            body["room"] = room
        body.update({"racksChecked": checked, "racksFitting": len(fits), "racks": fits[:limit], "refused": refused})
        return Response(body)
