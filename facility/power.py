"""A rack's power against its feeds, and where a new server fits: pure functions over a rack's state.

``facility.selectors`` reads the state (a few queries for every rack at
once) and these decide, so the property test checks the decisions against a
brute-force reference without a database.

Failover: a rack fed by A and B must survive either feed failing, so each
feed alone must carry the rack's whole load. The load counts each host's
measured draw (``power_watts``, its latest reading) and, for a host that
reports none, its nameplate: a plan that ignores unmeasured hosts would
overbook. Feed capacities are taken as given: give the usable (derated)
figure if the site keeps a margin below the breaker's rating.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypedDict

from facility.placement import Occupant, free_runs, units_text


@dataclass(frozen=True, slots=True)
class RackState:
    """What the capacity and power questions need of one rack."""

    name: str
    site: str
    room: str
    row: str
    height_u: int
    feeds: dict[str, float]  # side -> capacity in watts
    occupants: tuple[Occupant, ...] = ()
    measured_watts: float = 0.0  # the sum of the latest readings of hosts that report power
    nameplate_watts: float = 0.0  # the sum of every host's nameplate
    planning_watts: float = 0.0  # measured where reported, else nameplate
    hosts: int = 0
    hosts_measured: int = 0
    feed_pdus: dict[str, str] = field(default_factory=dict)


class FailoverDoc(TypedDict):
    failedFeed: str
    survivingFeed: str | None
    survivingCapacityWatts: float
    marginWatts: float
    carries: bool


class FeedDoc(TypedDict):
    side: str
    pdu: str
    capacityWatts: float
    measuredShare: float


class RackPowerDoc(TypedDict):
    """``GET /api/racks/{name}/power``: a rack's draw against its feeds, and what a feed's failure would do."""

    rack: str
    site: str | None
    room: str | None
    row: str | None
    hosts: int
    hostsMeasured: int
    measuredWatts: float
    nameplateWatts: float
    capacityWatts: float
    measuredShare: float | None
    nameplateShare: float | None
    feeds: list[FeedDoc]
    failover: list[FailoverDoc]
    abOk: bool


def rack_power_doc(rack: RackState) -> RackPowerDoc:
    """The rack's power document: measured and nameplate draw against capacity; the A/B check on measured load.

    ``capacityWatts`` is what the rack has with both feeds up (their sum);
    each ``failover`` entry says whether the surviving feed alone carries
    the measured load; ``abOk`` is true when both do (false with one feed or none).
    """
    total = sum(rack.feeds.values())
    failover: list[FailoverDoc] = []
    for failed in ("A", "B"):
        if failed not in rack.feeds:
            continue
        surviving = "B" if failed == "A" else "A"
        capacity = rack.feeds.get(surviving, 0.0)
        margin = capacity - rack.measured_watts
        failover.append(
            {
                "failedFeed": failed,
                "survivingFeed": surviving if surviving in rack.feeds else None,
                "survivingCapacityWatts": capacity,
                "marginWatts": round(margin, 1),
                "carries": surviving in rack.feeds and margin >= 0,
            }
        )
    return {
        "rack": rack.name,
        "site": rack.site or None,
        "room": rack.room or None,
        "row": rack.row or None,
        "hosts": rack.hosts,
        "hostsMeasured": rack.hosts_measured,
        "measuredWatts": round(rack.measured_watts, 1),
        "nameplateWatts": round(rack.nameplate_watts, 1),
        "capacityWatts": total,
        "measuredShare": round(rack.measured_watts / total, 4) if total else None,
        "nameplateShare": round(rack.nameplate_watts / total, 4) if total else None,
        "feeds": [
            {
                "side": side,
                "pdu": rack.feed_pdus.get(side, ""),
                "capacityWatts": capacity,
                # With both feeds up, a rack's load is shared about evenly between them.
                "measuredShare": round(rack.measured_watts / 2 / capacity, 4) if capacity else 0.0,
            }
            for side, capacity in sorted(rack.feeds.items())
        ],
        "failover": failover,
        "abOk": len(failover) == 2 and all(f["carries"] for f in failover),
    }


class CapacityFit(TypedDict):
    rack: str
    site: str
    room: str
    row: str
    firstUnit: int
    freeUnits: int
    longestFreeRun: int
    headroomWatts: float
    reasons: list[str]


@dataclass(frozen=True, slots=True)
class RackVerdict:
    """Whether a server fits one rack: a fit (with its place) or the reasons it does not."""

    fit: CapacityFit | None
    refusals: tuple[str, ...]


def rack_fit(rack: RackState, *, u: int, watts: float) -> RackVerdict:
    """Whether a ``u``-unit server drawing ``watts`` fits ``rack``, where, and why.

    1. Space: the lowest run of ``u`` contiguous free units (first fit, bottom up).
    2. Power: both feeds present, and the weaker one alone carries the rack's
       planning load plus ``watts`` (the failover case); the headroom is what
       that feed has left afterwards.
    """
    runs = free_runs(rack_height_u=rack.height_u, occupants=rack.occupants)
    free = sum(length for _, length in runs)
    longest = max((length for _, length in runs), default=0)
    first = next((start for start, length in runs if length >= u), None)
    refusals: list[str] = []
    if first is None:
        refusals.append(f"no {u} contiguous free units (longest free run {longest}U of {free}U free)")
    missing = [side for side in ("A", "B") if side not in rack.feeds]
    headroom = 0.0
    if missing:
        refusals.append(f"no feed {' or '.join(missing)} recorded: cannot survive a feed failure")
    else:
        weaker = min(rack.feeds, key=lambda side: (rack.feeds[side], side))
        headroom = rack.feeds[weaker] - rack.planning_watts - watts
        if headroom < 0:
            other = "B" if weaker == "A" else "A"
            refusals.append(
                f"after a failover (feed {other} down), feed {weaker} ({rack.feeds[weaker]:.0f} W)"
                f" would carry {rack.planning_watts:.0f} W + {watts:.0f} W: {-headroom:.0f} W short"
            )
    if refusals:
        return RackVerdict(None, tuple(refusals))
    assert first is not None
    reasons = [
        f"{units_text(first, u)} free: the lowest fit; {free}U free in all, longest run {longest}U",
        f"either feed alone carries {rack.planning_watts:.0f} W now + {watts:.0f} W:"
        f" {headroom:.0f} W left on the weaker ({rack.feeds[weaker]:.0f} W)",
    ]
    if rack.hosts_measured < rack.hosts:
        reasons.append(f"{rack.hosts - rack.hosts_measured} of {rack.hosts} hosts counted at nameplate (no reading)")
    fit: CapacityFit = {
        "rack": rack.name,
        "site": rack.site,
        "room": rack.room,
        "row": rack.row,
        "firstUnit": first,
        "freeUnits": free,
        "longestFreeRun": longest,
        "headroomWatts": round(headroom, 1),
        "reasons": reasons,
    }
    return RackVerdict(fit, ())


def capacity_rank(racks: list[RackState], *, u: int, watts: float) -> tuple[list[CapacityFit], dict[str, int]]:
    """The racks a server fits, best first, and how many racks were refused for each kind of reason.

    Best: the most power left after failover (power runs out before space),
    then the tightest space that still fits (the shortest free run that
    holds it, keeping long runs for big servers), then the rack's name.
    """
    fits: list[CapacityFit] = []
    refused: dict[str, int] = {}
    for rack in racks:
        verdict = rack_fit(rack, u=u, watts=watts)
        if verdict.fit is not None:
            fits.append(verdict.fit)
        for reason in verdict.refusals:
            kind = reason.split(":")[0].split(" (")[0] if reason.startswith("no ") else "power after failover"
            refused[kind] = refused.get(kind, 0) + 1
    fits.sort(key=lambda f: (-f["headroomWatts"], f["longestFreeRun"], f["rack"]))
    return fits, refused
