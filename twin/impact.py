"""What failing some nodes would do to the twin as it is (or was): the impact endpoints' one function."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypedDict

import msgspec
from django.conf import settings

from common.errors import Refused
from common.jsondecode import JsonRefused, json_decode
from fabric.impact import LinkLoad, impact_compute
from hosts.schema import hostname_normalize
from hosts.selectors import hostnames_marked_failed, link_capacities
from twin.fabric import fabric_of, nodes_failed
from twin.snapshot import gc_paused, snapshot_build

# A "what if" names a few switches; a list this long is a mistake, not a question.
FAIL_MAX = 1000


class LinkProjectionDoc(TypedDict):
    id: str
    source: str
    target: str
    throughputGbps: float
    utilization: float
    projectedGbps: float
    projectedUtilization: float
    hot: bool


class ImpactDoc(TypedDict):
    """Failing ``failed``: hosts that lose every path to the core, hosts and switches left with fewer uplinks,
    links that would carry more (``hot`` above 90 % of their capacity), busiest first."""

    generatedAt: str
    failed: list[str]
    lost: list[str]
    degraded: list[str]
    degradedSwitches: list[str]
    links: list[LinkProjectionDoc]


class ImpactRequest(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/twin/impact``: the nodes to fail."""

    fail: list[str]


class ImpactRefused(Refused):
    """A "what if" that names no node, a node twice or a node the twin does not hold."""

    def __init__(self, detail: str, *, parameter: str = "node") -> None:
        super().__init__("invalid_impact", detail, fields={"parameter": parameter})


_request_decoder = msgspec.json.Decoder(ImpactRequest)


def impact_request_decode(body: bytes) -> list[str]:
    """The names a POST body asks to fail, or a refusal saying why."""
    try:
        return json_decode(_request_decoder, body).fail
    except JsonRefused as exc:
        raise ImpactRefused(f'The body is not {{"fail": ["<node>", …]}}: {exc}', parameter="fail") from None


def impact_analyse(*, fail: Sequence[str], at: datetime | None = None) -> ImpactDoc:
    """Fail these nodes on the twin now (or at ``at``) and answer what that does.

    1. Check the names: at least one, at most ``FAIL_MAX``, each once, each a node of the twin.
    2. Build the twin-state document (the live one, or the one at ``at``);
       what has failed already (``twin.fabric.nodes_failed``) is the baseline.
    3. ``fabric.impact.impact_compute`` on its nodes and links, with each
       link's capacity (today's, as for any inventory fact).
    """
    if not fail:
        raise ImpactRefused("Name at least one node to fail.")
    if len(fail) > FAIL_MAX:
        raise ImpactRefused(f"At most {FAIL_MAX} nodes at once.")
    names = [hostname_normalize(name) or name for name in fail]
    if len(set(names)) < len(names):
        raise ImpactRefused(f"{next(n for n in names if names.count(n) > 1)[:253]} is named twice.")
    with gc_paused():
        state = snapshot_build(at=at)
    hosts = state["hosts"]
    index = {h["hostname"]: i for i, h in enumerate(hosts)}
    unknown = [name for name in names if name not in index]
    if unknown:
        raise ImpactRefused(f"No node named {unknown[0][:253]!r} in the twin.")
    capacities = link_capacities()
    default = settings.TWIN_DEFAULT_LINK_CAPACITY_GBPS
    loads = [
        LinkLoad(
            id=link["id"],
            source=link["source"],
            target=link["target"],
            throughput_gbps=link["throughputGbps"],
            capacity_gbps=capacities.get(link["id"], default),
        )
        for link in state["links"]
    ]
    impact = impact_compute(
        fabric_of(hosts=hosts, links=state["links"]),
        links=loads,
        failed_now=nodes_failed(hosts=hosts, marked=hostnames_marked_failed()),
        fail=[index[name] for name in names],
    )
    return {
        "generatedAt": state["generatedAt"],
        "failed": impact.failed,
        "lost": impact.lost,
        "degraded": impact.degraded,
        "degradedSwitches": impact.degraded_switches,
        "links": [
            {
                "id": p.link.id,
                "source": p.link.source,
                "target": p.link.target,
                "throughputGbps": p.link.throughput_gbps,
                "utilization": p.utilization,
                "projectedGbps": p.projected_gbps,
                "projectedUtilization": p.projected_utilization,
                "hot": p.hot,
            }
            for p in impact.links
        ],
    }
