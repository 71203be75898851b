"""The network fabric as a file: switches in tiers and the links among them and to hosts.

``topology_import`` is the one writer of a topology file (``python manage.py
topology_import FILE``; the format is in docs/operations.md). It checks every
row first (``topology_check``, which may refuse, naming each bad row) and then
stores them all in one transaction (``topology_store``, which never refuses),
so a file is loaded whole or not at all. Loading the same file again changes
nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Annotated

import msgspec
from django.conf import settings
from django.db import transaction

from common.errors import Refused
from common.events import event_publish_on_commit, hosts_changed
from common.jsondecode import JsonMalformed, JsonRefused, json_decode
from common.text import text
from hosts.models import FabricRole, Host, Interface, Link
from hosts.schema import DisplayName, Position, hostname_normalize

# Links run from an upper tier down: a link drawn up or sideways would make
# "the way to the core" ambiguous (and an import of it is how loops get in).
TIERS: dict[str, int] = {FabricRole.CORE: 3, FabricRole.SPINE: 2, FabricRole.LEAF: 1, FabricRole.NONE: 0}
SWITCH_ROLES = (FabricRole.CORE, FabricRole.SPINE, FabricRole.LEAF)
# Enough to fix a file by; the rest are counted.
ERRORS_SHOWN = 50

InterfaceName = text(min_length=1, max_length=64)
Capacity = Annotated[float, msgspec.Meta(gt=0, le=1e6)]


def node_tier(*, hostname: str, role: str) -> int:
    """A node's tier: the configured core (``TWIN_CORE_HOSTNAME``) is the core whatever its role field says."""
    if hostname == settings.TWIN_CORE_HOSTNAME:
        return TIERS[FabricRole.CORE]
    return TIERS.get(role, 0)


class SwitchRow(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    """A switch of the file: a virtual node with its tier, and where it stands on the floor (optional)."""

    name: str
    role: str
    display_name: DisplayName | None = None
    position: Position | None = None


class LinkRow(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    """A link of the file, from the upper tier (``source``) down to ``target``, with optional interface names."""

    source: str
    target: str
    source_interface: InterfaceName | None = None
    target_interface: InterfaceName | None = None
    capacity_gbps: Capacity | None = None


class _TopologyFile(msgspec.Struct, forbid_unknown_fields=True):
    switches: list[msgspec.Raw] = []
    links: list[msgspec.Raw] = []


class TopologyRefused(Refused):
    """A topology file refused whole: ``errors`` names each bad row (``links[3]: …``)."""

    def __init__(self, errors: list[str]) -> None:
        shown = errors[:ERRORS_SHOWN]
        more = f" (and {len(errors) - ERRORS_SHOWN} more)" if len(errors) > ERRORS_SHOWN else ""
        super().__init__(
            "invalid_topology",
            f"The topology was not loaded ({len(errors)} error(s){more}): " + "; ".join(shown),
            fields={"errors": shown},
        )
        self.errors = errors


@dataclass(frozen=True)
class Topology:
    """A checked topology file: its switches (name → role, display name) and links, names normalised."""

    switches: dict[str, SwitchRow]
    links: list[LinkRow]


@dataclass
class ImportResult:
    """What an import changed; all zero when the file was loaded before."""

    switches_created: int = 0
    switches_updated: int = 0
    links_created: int = 0
    links_updated: int = 0
    interfaces_created: int = 0
    uplinks_removed: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(
            [
                self.switches_created,
                self.switches_updated,
                self.links_created,
                self.links_updated,
                self.interfaces_created,
                self.uplinks_removed,
            ]
        )


_file_decoder = msgspec.json.Decoder(_TopologyFile)
_switch_decoder = msgspec.json.Decoder(SwitchRow)
_link_decoder = msgspec.json.Decoder(LinkRow)


def topology_check(*, body: bytes) -> Topology:
    """Read and check a topology file; refuse it, naming every bad row, or return it.

    1. The file: an object with ``switches`` and ``links`` lists.
    2. Each switch: a valid host name, a role among core/spine/leaf, named
       once, not a host with an agent; the configured core only as ``core``.
    3. Each link: both ends known (a switch of the file or a node already in
       the inventory), not a node to itself, no pair twice (either way round,
       the inventory's links included), and drawn down the tiers.
    """
    try:
        document = json_decode(_file_decoder, body)
    except JsonMalformed as exc:
        raise TopologyRefused([f"the file is not JSON: {exc}"]) from None
    except JsonRefused as exc:
        raise TopologyRefused([f"the file is not a topology (an object with 'switches' and 'links'): {exc}"]) from None
    errors: list[str] = []
    switches = _switches_check(document.switches, errors)
    links = _links_check(document.links, switches, errors)
    if errors:
        raise TopologyRefused(errors)
    return Topology(switches=switches, links=links)


def _switches_check(raws: list[msgspec.Raw], errors: list[str]) -> dict[str, SwitchRow]:
    rows: dict[str, SwitchRow] = {}
    decoded: list[tuple[int, SwitchRow]] = []
    for index, raw in enumerate(raws):
        where = f"switches[{index}]"
        try:
            row = json_decode(_switch_decoder, raw)
        except JsonRefused as exc:
            errors.append(f"{where}: {exc}")
            continue
        name = hostname_normalize(row.name)
        if name is None:
            errors.append(f"{where}: name {row.name[:60]!r} is not a valid RFC 1123 host name")
            continue
        row.name = name
        if row.role not in SWITCH_ROLES:
            errors.append(f"{where} ({name}): role {row.role[:20]!r} is not one of core, spine, leaf")
            continue
        if name == settings.TWIN_CORE_HOSTNAME and row.role != FabricRole.CORE:
            errors.append(f"{where} ({name}): the core switch (TWIN_CORE_HOSTNAME) can only have the role core")
            continue
        if name in rows:
            errors.append(f"{where} ({name}): switch named twice")
            continue
        rows[name] = row
        decoded.append((index, row))
    agents = set(Host.objects.filter(hostname__in=rows, is_virtual=False).values_list("hostname", flat=True))
    for index, row in decoded:
        if row.name in agents:
            errors.append(f"switches[{index}] ({row.name}): a host with an agent of its own, not a switch")
    return rows


def _links_check(raws: list[msgspec.Raw], switches: dict[str, SwitchRow], errors: list[str]) -> list[LinkRow]:
    decoded: list[tuple[int, LinkRow]] = []
    for index, raw in enumerate(raws):
        try:
            row = json_decode(_link_decoder, raw)
        except JsonRefused as exc:
            errors.append(f"links[{index}]: {exc}")
            continue
        source, target = hostname_normalize(row.source), hostname_normalize(row.target)
        if source is None or target is None:
            bad = row.source if source is None else row.target
            errors.append(f"links[{index}]: {bad[:60]!r} is not a valid RFC 1123 host name")
            continue
        row.source, row.target = source, target
        decoded.append((index, row))
    named = {n for _, row in decoded for n in (row.source, row.target)} - switches.keys()
    existing = {
        h: (v, r) for h, v, r in Host.objects.filter(hostname__in=named).values_list("hostname", "is_virtual", "role")
    }
    stored_pairs = _pairs_stored(names=named | switches.keys())

    def tier(name: str) -> int:
        role = switches[name].role if name in switches else existing[name][1]
        return node_tier(hostname=name, role=role)

    links: list[LinkRow] = []
    seen: dict[frozenset[str], int] = {}
    for index, row in decoded:
        where = f"links[{index}] ({row.source}::{row.target})"
        unknown = [n for n in (row.source, row.target) if n not in switches and n not in existing]
        if unknown:
            errors.append(f"{where}: unknown node {unknown[0]} (neither a switch of this file nor in the inventory)")
            continue
        if row.source == row.target:
            errors.append(f"{where}: a node linked to itself")
            continue
        pair = frozenset((row.source, row.target))
        if pair in seen:
            errors.append(f"{where}: duplicate of links[{seen[pair]}] (the same two nodes)")
            continue
        seen[pair] = index
        if (row.target, row.source) in stored_pairs:
            errors.append(f"{where}: already linked the other way round ({row.target}::{row.source}) in the inventory")
            continue
        if tier(row.source) <= tier(row.target):
            errors.append(
                f"{where}: a loop: links run down the tiers (core → spine → leaf → host), "
                f"and {row.source} is not above {row.target}"
            )
            continue
        links.append(row)
    return links


def _pairs_stored(*, names: Iterable[str]) -> set[tuple[str, str]]:
    """The inventory's links (source, target hostnames) among these nodes."""
    wanted = list(names)
    links = Link.objects.filter(source__hostname__in=wanted, target__hostname__in=wanted)
    return set(links.values_list("source__hostname", "target__hostname"))


@transaction.atomic
def topology_store(*, topology: Topology) -> ImportResult:
    """Store a checked topology in one transaction; write only what differs from the inventory.

    1. Create the switches that are missing (virtual nodes with their role),
       update the role and display name of those that differ.
    2. Create the interfaces the links name that are missing.
    3. Create the missing links, update those whose capacity or interfaces differ.
    4. A host the file links to a switch other than the core loses its
       default uplink to the core (given on first contact,
       ``hosts.services.links_uplink_ensure``), unless the file lists it.
    After commit: one hosts-changed event when anything changed.
    """
    result = ImportResult()
    nodes = _switches_store(topology.switches, result)
    names = {n for row in topology.links for n in (row.source, row.target)} - nodes.keys()
    nodes.update({h.hostname: h for h in Host.objects.filter(hostname__in=names)})
    interfaces = _interfaces_store(topology.links, nodes, result)
    _links_store(topology.links, nodes, interfaces, result)
    _default_uplinks_remove(topology.links, nodes, result)
    if result.changed:
        event_publish_on_commit(hosts_changed(hostnames=None))
    return result


@transaction.atomic
def topology_import(*, body: bytes) -> ImportResult:
    """Check a topology file and store it whole (see ``topology_check`` and ``topology_store``).

    One transaction around both, so the inventory the rows were checked
    against is the one they are stored into.
    """
    return topology_store(topology=topology_check(body=body))


def _switches_store(switches: dict[str, SwitchRow], result: ImportResult) -> dict[str, Host]:
    nodes = {h.hostname: h for h in Host.objects.select_for_update().filter(hostname__in=switches)}
    for name, row in switches.items():
        host = nodes.get(name)
        display = row.display_name
        at = row.position
        if host is None:
            nodes[name] = Host.objects.create(
                hostname=name,
                display_name=display or "",
                agent_version="virtual",
                platform="virtual-switch",
                is_virtual=True,
                role=row.role,
                position_x=at.x if at else None,
                position_y=at.y if at else None,
                position_z=at.z if at else None,
            )
            result.switches_created += 1
            continue
        changed = []
        if at is not None and (host.position_x, host.position_y, host.position_z) != (at.x, at.y, at.z):
            host.position_x, host.position_y, host.position_z = at.x, at.y, at.z
            changed += ["position_x", "position_y", "position_z"]
        if host.role != row.role:
            host.role = row.role
            changed.append("role")
        if display is not None and host.display_name != display:
            host.display_name = display
            changed.append("display_name")
        if changed:
            host.save(update_fields=changed)
            result.switches_updated += 1
    return nodes


def _interfaces_store(links: list[LinkRow], nodes: dict[str, Host], result: ImportResult) -> dict[tuple[int, str], int]:
    """(host id, interface name) → interface id for every interface the links name, creating the missing ones."""
    wanted = {(nodes[row.source].pk, row.source_interface) for row in links if row.source_interface}
    wanted |= {(nodes[row.target].pk, row.target_interface) for row in links if row.target_interface}
    if not wanted:
        return {}
    host_ids = {h for h, _ in wanted}

    def stored() -> dict[tuple[int, str], int]:
        rows = Interface.objects.filter(host_id__in=host_ids).values_list("host_id", "name", "pk")
        return {(h, n): pk for h, n, pk in rows}

    known = stored()
    missing = sorted(wanted - known.keys())
    if missing:
        Interface.objects.bulk_create([Interface(host_id=h, name=n) for h, n in missing], ignore_conflicts=True)
        result.interfaces_created += len(missing)
        known = stored()
    return known


def _links_store(
    links: list[LinkRow], nodes: dict[str, Host], interfaces: dict[tuple[int, str], int], result: ImportResult
) -> None:
    ids = [nodes[row.source].pk for row in links]
    stored = {(link.source_id, link.target_id): link for link in Link.objects.filter(source_id__in=ids)}
    default_capacity = settings.TWIN_DEFAULT_LINK_CAPACITY_GBPS
    for row in links:
        source, target = nodes[row.source].pk, nodes[row.target].pk
        wanted = {
            "capacity_gbps": row.capacity_gbps if row.capacity_gbps is not None else default_capacity,
            "source_interface_id": interfaces[(source, row.source_interface)] if row.source_interface else None,
            "target_interface_id": interfaces[(target, row.target_interface)] if row.target_interface else None,
        }
        link = stored.get((source, target))
        if link is None:
            Link.objects.create(source_id=source, target_id=target, **wanted)
            result.links_created += 1
            continue
        changed = [name for name, value in wanted.items() if getattr(link, name) != value]
        if changed:
            for name in changed:
                setattr(link, name, wanted[name])
            link.save(update_fields=changed)
            result.links_updated += 1


def _default_uplinks_remove(links: list[LinkRow], nodes: dict[str, Host], result: ImportResult) -> None:
    core = settings.TWIN_CORE_HOSTNAME
    listed = {(row.source, row.target) for row in links}
    rewired = {row.target for row in links if not nodes[row.target].is_virtual and row.source != core} - {
        target for source, target in listed if source == core
    }
    if not rewired:
        return
    uplinks = Link.objects.filter(source__hostname=core, target__hostname__in=rewired)
    removed = sorted(uplinks.values_list("target__hostname", flat=True))
    if removed:
        uplinks.delete()
        result.uplinks_removed = [f"{core}::{name}" for name in removed]
