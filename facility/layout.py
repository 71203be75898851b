"""The floor laid out from sites, rooms, rows and rack units, in metres (x and z on the floor, y up).

A host that nobody gave a position (no agent-reported, no admin position) but
that has a unit in a rack standing in a row is drawn there: racks side by
side along x in their row's order, rows one behind the other along z, rooms
side by side, the unit's height on y. Positions given by agents or admins
always win (``twin.snapshot`` applies these only to hosts without one).
"""

from __future__ import annotations

from facility.models import Face, RackLocation

RACK_WIDTH_M = 0.6
RACK_DEPTH_M = 1.2
AISLE_M = 1.2
ROW_PITCH_M = RACK_DEPTH_M + AISLE_M
ROOM_GAP_M = 6.0
UNIT_M = 0.04445  # 1.75 inches, EIA-310


def host_floor_positions() -> dict[int, tuple[float, float, float]]:
    """Where each host with a unit in a located rack is drawn, ``{host id: (x, y, z)}``, in one query.

    1. Read every located rack with its row, room and site, and the hosts
       mounted in it (one row per rack and host; an empty rack's once).
    2. Rank rooms by (site, room), rows by order within their room and
       racks by order within their row (ranks, so orders 10, 20, 30 draw
       as neighbours; empty racks keep their place).
    3. Rooms side by side along x, each as wide as its longest row; a
       host's ``y`` is the middle of its units, a rear-mounted host is drawn
       at the back of its rack.
    """
    rows_read = RackLocation.objects.values_list(
        "rack_id", "order", "rack__name", "row_id", "row__order", "row__name", "row__room_id",
        "row__room__site__name", "row__room__name",
        "rack__hosts__id", "rack__hosts__mount__unit", "rack__hosts__mount__height_u", "rack__hosts__mount__face",
    )  # fmt: skip
    rooms: dict[int, tuple[str, str]] = {}
    rows: dict[int, dict[int, set[tuple[int, str, int]]]] = {}
    row_keys: dict[int, tuple[int, str]] = {}
    mounted: list[tuple[int, int, int, int, str]] = []
    for (
        rack_id,
        order,
        name,
        row_id,
        row_order,
        row_name,
        room_id,
        site,
        room,
        host_id,
        unit,
        height,
        face,
    ) in rows_read:
        rooms[room_id] = (site, room)
        rows.setdefault(room_id, {}).setdefault(row_id, set()).add((order, name, rack_id))
        row_keys[row_id] = (row_order, row_name)
        if host_id is not None and unit is not None:
            mounted.append((host_id, rack_id, unit, height, face))
    if not mounted:
        return {}
    racks: dict[int, tuple[float, float]] = {}
    room_x = 0.0
    for room_id in sorted(rooms, key=rooms.__getitem__):
        widest = 0
        for z_rank, row_id in enumerate(sorted(rows[room_id], key=row_keys.__getitem__)):
            in_row = sorted(rows[room_id][row_id])
            widest = max(widest, len(in_row))
            for x_rank, (_, _, rack_id) in enumerate(in_row):
                racks[rack_id] = (room_x + (x_rank + 0.5) * RACK_WIDTH_M, z_rank * ROW_PITCH_M)
        room_x += widest * RACK_WIDTH_M + ROOM_GAP_M
    rear, front = RACK_DEPTH_M / 4, -RACK_DEPTH_M / 4
    return {
        host_id: (
            racks[rack_id][0],
            (unit - 1 + height / 2) * UNIT_M,
            racks[rack_id][1] + (rear if face == Face.REAR else front),
        )
        for host_id, rack_id, unit, height, face in mounted
    }
