"""A whole floor from a file: sites, rooms, rows, racks, power feeds and hosts' units, all or nothing.

The file format is documented in docs/operations.md ("Importing a floor").
``floor_import`` is idempotent: each record is found by its natural key (a
site's name, a room's site and name, a rack's name, a host's hostname) and
only what differs is written, so importing the same file again changes
nothing. Every row is validated and named in its refusal
(``units[17] (web-0042): ...``); one bad row refuses the whole file and
nothing is stored.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import msgspec
from django.db import transaction

from common.errors import Refused
from common.events import event_publish_on_commit, hosts_changed
from common.text import text
from facility.models import RACK_HEIGHT_DEFAULT_U, RACK_HEIGHT_MAX_U, Mount, PowerFeed, RackLocation, Room, Row, Site
from facility.placement import Occupant, placement_check
from hosts.models import Host, Rack
from hosts.schema import hostname_normalize
from hosts.services import hosts_lock_or_create

Name = text(max_length=64, min_length=1)
Description = text(max_length=200)
Order = Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]
HeightU = Annotated[int, msgspec.Meta(ge=1, le=RACK_HEIGHT_MAX_U)]
Watts = Annotated[float, msgspec.Meta(ge=0, le=10_000_000)]
ROWS_MAX = 200_000
ERRORS_SHOWN = 20


class SiteIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    description: Description = ""


class RoomIn(msgspec.Struct, forbid_unknown_fields=True):
    site: Name
    name: Name


class RowIn(msgspec.Struct, forbid_unknown_fields=True):
    site: Name
    room: Name
    name: Name
    order: Order = 0


class RackIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    site: Name
    room: Name
    row: Name
    order: Order = 0
    height_u: HeightU = RACK_HEIGHT_DEFAULT_U
    description: Description = ""


class FeedIn(msgspec.Struct, forbid_unknown_fields=True):
    rack: Name
    side: Literal["A", "B"]
    pdu: Name | Literal[""] = ""
    watts: Watts | None = None
    amps: Annotated[float, msgspec.Meta(gt=0, le=10_000)] | None = None
    volts: Annotated[float, msgspec.Meta(gt=0, le=100_000)] | None = None


class UnitIn(msgspec.Struct, forbid_unknown_fields=True):
    hostname: str
    rack: Name
    unit: Annotated[int, msgspec.Meta(ge=1, le=RACK_HEIGHT_MAX_U)] | None = None
    height_u: HeightU = 1
    face: Literal["front", "rear"] = "front"
    nameplate_watts: Watts | None = None


KINDS: dict[str, type[msgspec.Struct]] = {
    "sites": SiteIn,
    "rooms": RoomIn,
    "rows": RowIn,
    "racks": RackIn,
    "feeds": FeedIn,
    "units": UnitIn,
}


class ImportRefused(Refused):
    """A file refused as a whole, with every row at fault named (the first ``ERRORS_SHOWN``)."""

    def __init__(self, errors: list[str]) -> None:
        shown = errors[:ERRORS_SHOWN]
        more = f" (and {len(errors) - len(shown)} more)" if len(errors) > len(shown) else ""
        super().__init__(
            "import_refused",
            f"{len(errors)} row(s) refused, nothing stored{more}:\n" + "\n".join(shown),
            fields={"errors": shown},
        )
        self.errors = errors


@dataclass
class ImportResult:
    """What an import changed, by kind: created and updated rows (unchanged ones are neither)."""

    created: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    updated: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def changed(self) -> bool:
        return any(self.created.values()) or any(self.updated.values())

    def summary(self) -> str:
        parts = [f"{kind}: {self.created[kind]} created, {self.updated[kind]} updated" for kind in (*KINDS, "hosts")]
        return "; ".join(parts)


def floor_parse(raw: bytes) -> dict[str, list[Any]]:
    """Decode a floor file (JSON: an object with a list per kind) into its rows; refuse every row at fault, named.

    A row is named by its list and index, and by its key when it has one:
    ``racks[3] (R4): height_u: Expected `int` >= 1``.
    """
    try:
        document = msgspec.json.decode(raw)
    except msgspec.DecodeError as error:
        raise ImportRefused([f"the file is not JSON: {error}"]) from None
    if not isinstance(document, dict):
        raise ImportRefused(["the file must be a JSON object with lists named " + ", ".join(KINDS)])
    errors = [f"{key}: unknown list (known: {', '.join(KINDS)})" for key in document if key not in KINDS]
    parsed: dict[str, list[Any]] = {}
    total = 0
    for kind, struct in KINDS.items():
        items = document.get(kind, [])
        if not isinstance(items, list):
            errors.append(f"{kind}: must be a list")
            continue
        total += len(items)
        rows = parsed[kind] = []
        for index, item in enumerate(items):
            try:
                rows.append(msgspec.convert(item, struct))
            except msgspec.ValidationError as error:
                errors.append(f"{_row_name(kind, index, item)}: {error}")
    if total > ROWS_MAX:
        errors.append(f"the file has {total} rows; at most {ROWS_MAX} are imported at once")
    if errors:
        raise ImportRefused(errors)
    return parsed


def _row_name(kind: str, index: int, item: Any) -> str:
    key = None
    if isinstance(item, dict):
        key = item.get("hostname") or item.get("name") or item.get("rack")
        if kind == "feeds" and isinstance(item.get("side"), str):
            key = f"{key} {item['side']}"
    return f"{kind}[{index}] ({str(key)[:80]})" if isinstance(key, str) else f"{kind}[{index}]"


def floor_import(*, raw: bytes) -> ImportResult:
    """Import a floor file in one transaction; refuse it all, naming every row at fault.

    1. Parse and validate each row's shape (``floor_parse``).
    2. In one transaction: check the references (a room's site, a rack's
       row, a unit's rack: in the file or already stored), duplicates and
       units (``placement_check``, against the file's units and the hosts
       already in each rack), collecting every error.
    3. Write sites, rooms, rows, racks and their locations, feeds, hosts
       (created as on first contact when new) and their units: only what
       differs. Readers are told after commit.
    """
    parsed = floor_parse(raw)
    result = ImportResult()
    with transaction.atomic():
        _Import(parsed, result).run()
        if result.changed:
            event_publish_on_commit(hosts_changed(hostnames=None))
    return result


class _Import:
    """One import's state: the rows, what is stored, the errors so far."""

    def __init__(self, parsed: dict[str, list[Any]], result: ImportResult) -> None:
        self.parsed, self.result = parsed, result
        self.errors: list[str] = []

    def run(self) -> None:
        sites = self._sites()
        rooms = self._rooms(sites)
        rows = self._rows(rooms)
        racks = self._racks(rows)
        self._feeds(racks)
        self._units(racks)
        if self.errors:
            raise ImportRefused(self.errors)

    # Each step below checks its rows (errors collected, the step skips a bad
    # row) and writes the good ones; an error anywhere rolls everything back.

    def _duplicates(self, kind: str, key: Any, index: int, seen: dict[Any, int]) -> bool:
        if key in seen:
            self.errors.append(f"{kind}[{index}] ({_key_text(key)}): repeats {kind}[{seen[key]}]")
            return True
        seen[key] = index
        return False

    def _sites(self) -> dict[str, Site]:
        stored = {s.name: s for s in Site.objects.all()}
        seen: dict[Any, int] = {}
        for index, row in enumerate(self.parsed["sites"]):
            if self._duplicates("sites", row.name, index, seen):
                continue
            site = stored.get(row.name)
            if site is None:
                stored[row.name] = Site.objects.create(name=row.name, description=row.description)
                self.result.created["sites"] += 1
            elif site.description != row.description:
                site.description = row.description
                site.save(update_fields=["description"])
                self.result.updated["sites"] += 1
        return stored

    def _rooms(self, sites: dict[str, Site]) -> dict[tuple[str, str], Room]:
        stored = {(r.site.name, r.name): r for r in Room.objects.select_related("site")}
        seen: dict[Any, int] = {}
        for index, row in enumerate(self.parsed["rooms"]):
            key = (row.site, row.name)
            if self._duplicates("rooms", key, index, seen) or key in stored:
                continue
            site = sites.get(row.site)
            if site is None:
                self.errors.append(f"rooms[{index}] ({row.name}): site {row.site} is not in the file or the twin")
                continue
            stored[key] = Room.objects.create(site=site, name=row.name)
            self.result.created["rooms"] += 1
        return stored

    def _rows(self, rooms: dict[tuple[str, str], Room]) -> dict[tuple[str, str, str], Row]:
        stored = {(r.room.site.name, r.room.name, r.name): r for r in Row.objects.select_related("room__site")}
        seen: dict[Any, int] = {}
        for index, item in enumerate(self.parsed["rows"]):
            key = (item.site, item.room, item.name)
            if self._duplicates("rows", key, index, seen):
                continue
            row = stored.get(key)
            if row is not None:
                if row.order != item.order:
                    row.order = item.order
                    row.save(update_fields=["order"])
                    self.result.updated["rows"] += 1
                continue
            room = rooms.get((item.site, item.room))
            if room is None:
                self.errors.append(
                    f"rows[{index}] ({item.name}): room {item.site}/{item.room} is not in the file or the twin"
                )
                continue
            stored[key] = Row.objects.create(room=room, name=item.name, order=item.order)
            self.result.created["rows"] += 1
        return stored

    def _racks(self, rows: dict[tuple[str, str, str], Row]) -> dict[str, tuple[Rack, int]]:
        """Every rack by name with its height: the file's, then the stored ones (default height without a location)."""
        racks = {r.name: r for r in Rack.objects.all()}
        locations = {loc.rack_id: loc for loc in RackLocation.objects.all()}
        seen: dict[Any, int] = {}
        new_racks, new_locations, changed_locations, changed_racks = [], [], [], []
        wanted: dict[str, tuple[RackIn, Row]] = {}
        for index, item in enumerate(self.parsed["racks"]):
            if self._duplicates("racks", item.name, index, seen):
                continue
            row = rows.get((item.site, item.room, item.row))
            if row is None:
                where = f"{item.site}/{item.room}/{item.row}"
                self.errors.append(f"racks[{index}] ({item.name}): row {where} is not in the file or the twin")
                continue
            wanted[item.name] = (item, row)
            rack = racks.get(item.name)
            if rack is None:
                new_racks.append(Rack(name=item.name, description=item.description))
            elif rack.description != item.description:
                rack.description = item.description
                changed_racks.append(rack)
        if new_racks:
            Rack.objects.bulk_create(new_racks)
            racks.update({r.name: r for r in Rack.objects.filter(name__in=[r.name for r in new_racks])})
            self.result.created["racks"] += len(new_racks)
        if changed_racks:
            Rack.objects.bulk_update(changed_racks, ["description"])
            self.result.updated["racks"] += len(changed_racks)
        for name, (item, row) in wanted.items():
            rack = racks[name]
            location = locations.get(rack.pk)
            if location is None:
                locations[rack.pk] = location = RackLocation(
                    rack=rack, row=row, order=item.order, height_u=item.height_u
                )
                new_locations.append(location)
            elif (location.row_id, location.order, location.height_u) != (row.pk, item.order, item.height_u):
                location.row, location.order, location.height_u = row, item.order, item.height_u
                changed_locations.append(location)
        RackLocation.objects.bulk_create(new_locations)
        RackLocation.objects.bulk_update(changed_locations, ["row", "order", "height_u"])
        # A new or moved location is the rack's change, counted once with it.
        self.result.updated["racks"] += len({loc.rack_id for loc in changed_locations} - {r.pk for r in changed_racks})
        return {
            name: (rack, getattr(locations.get(rack.pk), "height_u", RACK_HEIGHT_DEFAULT_U))
            for name, rack in racks.items()
        }

    def _feeds(self, racks: dict[str, tuple[Rack, int]]) -> None:
        stored = {(f.rack_id, f.side): f for f in PowerFeed.objects.all()}
        seen: dict[Any, int] = {}
        new, changed = [], []
        for index, item in enumerate(self.parsed["feeds"]):
            name = f"feeds[{index}] ({item.rack} {item.side})"
            if self._duplicates("feeds", (item.rack, item.side), index, seen):
                continue
            if item.rack not in racks:
                self.errors.append(f"{name}: rack {item.rack} is not in the file or the twin")
                continue
            if item.watts is None and (item.amps is None or item.volts is None):
                self.errors.append(f"{name}: give its capacity as watts, or as amps and volts")
                continue
            rack = racks[item.rack][0]
            values = {"pdu": item.pdu, "capacity_watts": item.watts, "amps": item.amps, "volts": item.volts}
            feed = stored.get((rack.pk, item.side))
            if feed is None:
                new.append(PowerFeed(rack=rack, side=item.side, **values))
            elif any(getattr(feed, k) != v for k, v in values.items()):
                for k, v in values.items():
                    setattr(feed, k, v)
                changed.append(feed)
        PowerFeed.objects.bulk_create(new)
        PowerFeed.objects.bulk_update(changed, ["pdu", "capacity_watts", "amps", "volts"])
        self.result.created["feeds"] += len(new)
        self.result.updated["feeds"] += len(changed)

    def _units(self, racks: dict[str, tuple[Rack, int]]) -> None:
        """Hosts' units: checked against each other and the hosts already in each rack, then written.

        1. Validate hostnames, racks and duplicates.
        2. Check each rack's final occupants (the file's units, plus stored
           hosts the file does not move) with ``placement_check``.
        3. Create missing hosts (as on first contact: ``hosts_lock_or_create``),
           then write racks (placement locked) and units that differ.
        """
        seen: dict[Any, int] = {}
        good: dict[str, tuple[int, UnitIn]] = {}
        for index, item in enumerate(self.parsed["units"]):
            hostname = hostname_normalize(item.hostname)
            if hostname is None:
                self.errors.append(f"units[{index}] ({item.hostname[:80]}): not a valid hostname (RFC 1123)")
                continue
            if self._duplicates("units", hostname, index, seen):
                continue
            if item.rack not in racks:
                self.errors.append(f"units[{index}] ({hostname}): rack {item.rack} is not in the file or the twin")
                continue
            good[hostname] = (index, item)
        by_rack: dict[str, list[Occupant]] = defaultdict(list)
        stored_mounts = Mount.objects.filter(unit__isnull=False, host__rack__isnull=False)
        for hostname, rack_name, unit, height in stored_mounts.values_list(
            "host__hostname", "host__rack__name", "unit", "height_u"
        ):
            if hostname not in good:
                by_rack[rack_name].append(Occupant(hostname, unit, height))
        for hostname, (_, item) in good.items():
            if item.unit is not None:
                by_rack[item.rack].append(Occupant(hostname, item.unit, item.height_u))
        for hostname, (index, item) in good.items():
            if item.unit is None:
                continue
            reason = placement_check(
                rack=item.rack,
                rack_height_u=racks[item.rack][1],
                hostname=hostname,
                unit=item.unit,
                height_u=item.height_u,
                occupants=by_rack[item.rack],
            )
            if reason is not None:
                self.errors.append(f"units[{index}] ({hostname}): {reason}")
        if self.errors or not good:
            return
        self._units_write(good, racks)

    def _units_write(self, good: dict[str, tuple[int, UnitIn]], racks: dict[str, tuple[Rack, int]]) -> None:
        existing = set(Host.objects.filter(hostname__in=list(good)).values_list("hostname", flat=True))
        hosts = hosts_lock_or_create(hostnames=list(good))
        self.result.created["hosts"] += len(set(good) - existing)
        moved = []
        for hostname, (_, item) in good.items():
            host = hosts[hostname]
            rack = racks[item.rack][0]
            if host.rack_id != rack.pk or not host.placement_locked:
                host.rack, host.placement_locked = rack, True
                moved.append(host)
        if moved:
            Host.objects.bulk_update(moved, ["rack", "placement_locked"], batch_size=2000)
            self.result.updated["hosts"] += len([h for h in moved if h.hostname in existing])
        mounts = {m.host_id: m for m in Mount.objects.filter(host__in=[h.pk for h in hosts.values()])}
        new, changed = [], []
        for hostname, (_, item) in good.items():
            host = hosts[hostname]
            values = {
                "unit": item.unit,
                "height_u": item.height_u,
                "face": item.face,
                "nameplate_watts": item.nameplate_watts,
            }
            mount = mounts.get(host.pk)
            if mount is None:
                new.append(Mount(host=host, **values))
            elif any(getattr(mount, k) != v for k, v in values.items()):
                for k, v in values.items():
                    setattr(mount, k, v)
                changed.append(mount)
        Mount.objects.bulk_create(new, batch_size=2000)
        Mount.objects.bulk_update(changed, ["unit", "height_u", "face", "nameplate_watts"], batch_size=2000)
        self.result.created["units"] += len(new)
        self.result.updated["units"] += len(changed)


def _key_text(key: Any) -> str:
    return "/".join(key) if isinstance(key, tuple) else str(key)
