"""Writes to the inventory: hosts, racks, links, placement, enrollment keys and credentials.

Every write that changes what the twin shows publishes a hosts-changed event
after commit (``common.events``); nothing else here knows the live side exists.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import F, QuerySet, signals
from django.db.models.base import ModelState
from django.utils import timezone

from common.errors import Refused
from common.events import event_publish_on_commit, hosts_changed
from common.sql import objects_insert_new, objects_update, sql_in
from hosts.credentials import (
    ENROLLMENT_CHALLENGE,
    enrollment_key_generate,
    enrollment_key_hash,
    key_id_generate,
    signing_secret_for,
)
from hosts.models import AgentCredential, EnrollmentKey, Host, Interface, Link, Rack
from hosts.schema import HostRegistrationRequest

CORE_SWITCH_DEFAULTS = {
    "display_name": "Core Switch",
    "agent_version": "virtual",
    "platform": "virtual-switch",
    "is_virtual": True,
    "position_x": 0.0,
    "position_y": 0.0,
    "position_z": 0.0,
    "placement_locked": True,
}


def core_switch_ensure(*, host_model: type[Host] = Host) -> Host:
    """Create the virtual core switch if it is missing.

    The first migration calls it with its historical model, which is why the
    model is a parameter.
    """
    core, _ = host_model.objects.get_or_create(hostname=settings.TWIN_CORE_HOSTNAME, defaults=CORE_SWITCH_DEFAULTS)
    return core


def racks_ensure(*, names: Iterable[str]) -> dict[str, Rack]:
    """Return the racks with these names, creating the missing ones.

    Read first: a collector names the same racks in every batch, and an
    INSERT of racks that exist costs a statement and index probes each time.
    ``ignore_conflicts`` lets two batches name a new rack at once without an
    IntegrityError: the loser's insert is skipped and both read the same row.
    """
    wanted = set(names)
    if not wanted:
        return {}
    racks = {r.name: r for r in Rack.objects.filter(name__in=wanted)}
    if len(racks) < len(wanted):
        Rack.objects.bulk_create([Rack(name=n) for n in sorted(wanted - racks.keys())], ignore_conflicts=True)
        racks = {r.name: r for r in Rack.objects.filter(name__in=wanted)}
    return racks


def hosts_lock_or_create(*, hostnames: Iterable[str], facts: Mapping[str, HostFacts] | None = None) -> dict[str, Host]:
    """Return these hosts, row-locked for the surrounding transaction, creating missing ones.

    Every row a batch takes is taken in hostname order, new rows before locked
    ones, so concurrent batches for overlapping hosts queue behind each other
    instead of deadlocking, and the latest values they compute from the stored
    ones cannot interleave. (Locking the known hosts first and inserting the
    others after let two batches each hold what the other waited for:
    tests/e2e/test_concurrency.py.)

    1. Lock them all in hostname order if every one exists (the steady
       state: one statement); else lock none, and find which exist, without
       locking.
    2. Insert the missing ones in hostname order with what ``facts`` says
       about them (the rules of ``host_facts_apply``, so most new hosts need no
       second write), skipping any a concurrent batch just created.
    3. Lock them all in hostname order, and give each new one an uplink to the
       core switch (see ``links_uplink_ensure``).

    A rack that does not exist yet is not created here: racks are inserted
    only once every host lock is held (``hosts_facts_record``), which also
    places such hosts and applies the facts of a host a concurrent batch
    created, like any existing host's.
    """
    wanted = sorted(set(hostnames))
    if not wanted:
        return {}
    locked = _hosts_lock(wanted, all_or_none=True)
    if locked or len(wanted) == 1:
        missing = [] if locked else wanted
    else:
        missing = sorted(set(wanted) - _hostnames_existing(wanted))
    if missing:
        objects_insert_new(_hosts_new(hostnames=missing, facts=facts or {}))
    if missing or not locked:
        locked = _hosts_lock(wanted)
    if missing:
        links_uplink_ensure(hosts=[locked[h] for h in missing if h in locked])
    if len(locked) < len(wanted):
        # Deleted (by an admin) between the look and the lock: created again, as on first contact.
        return hosts_lock_or_create(hostnames=wanted, facts=facts)
    return locked


def _hostnames_existing(hostnames: list[str]) -> set[str]:
    condition, params = sql_in("hostname", hostnames)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT hostname FROM {Host._meta.db_table} WHERE {condition}", params)
        return {row[0] for row in cursor.fetchall()}


def _hosts_new(*, hostnames: list[str], facts: Mapping[str, HostFacts]) -> list[Host]:
    """Unsaved hosts with what the agents say about them applied, but for a rack that does not exist yet."""
    named = {f.rack for h in hostnames if (f := facts.get(h)) is not None and f.rack}
    # Read, never inserted here (see hosts_lock_or_create): a read waits for no one.
    racks = {r.name: r for r in Rack.objects.filter(name__in=named)} if named else {}
    hosts = []
    for hostname in hostnames:
        host = Host(hostname=hostname)
        if (fact := facts.get(hostname)) is not None:
            if fact.rack and fact.rack not in racks:
                fact = replace(fact, rack=None)
            host_facts_apply(host=host, facts=fact, racks=racks)
        hosts.append(host)
    return hosts


def _hosts_lock(hostnames: list[str], *, all_or_none: bool = False) -> dict[str, Host]:
    """These hosts (those that exist), row-locked in hostname order.

    ``all_or_none``: lock nothing unless every one exists. The count is an
    uncorrelated subquery, evaluated once before the first row is locked, so a
    batch naming a new host holds no lock while it inserts (see
    ``hosts_lock_or_create``). A host deleted between the count and its lock
    is simply missing from the answer.
    """
    # Plain SQL into model instances: every batch runs this, and building the
    # ORM query cost more than running it (bench/analysis.md).
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    condition, params = sql_in("hostname", hostnames)
    table = Host._meta.db_table
    if all_or_none and len(hostnames) > 1:
        condition = f"{condition} AND (SELECT count(*) FROM {table} WHERE {condition}) = %s"
        params = [*params, *params, len(hostnames)]
    fields = Host._meta.concrete_fields
    sql = f"SELECT {', '.join(f.column for f in fields)} FROM {table} WHERE {condition} ORDER BY hostname{lock}"
    if connection.vendor != "postgresql":
        # raw() applies the backend's converters (SQLite's text datetimes, integer booleans).
        return {h.hostname: h for h in Host.objects.raw(sql, params)}
    # Rows into instances with ``from_db``, as ``raw()`` does, without its per-query setup
    # (a tenth of a one-sample batch's time went to RawQuerySet). PostgreSQL's driver
    # returns every column of a host as its field holds it: no converters.
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    names = [f.attname for f in fields]
    hostname_at = names.index("hostname")
    alias = connection.alias  # once: each read of it goes through a proxy
    if signals.pre_init.has_listeners(Host) or signals.post_init.has_listeners(Host):
        return {row[hostname_at]: Host.from_db(alias, names, row) for row in rows}
    # What ``from_db`` makes, without ``Model.__init__``'s field-by-field setup,
    # which was most of the Python time of locking a 500-host batch (bench/results.md,
    # 2026-12-08); only while nothing listens to a host's construction.
    hosts: dict[str, Host] = {}
    for row in rows:
        host = Host.__new__(Host)
        host.__dict__.update(zip(names, row, strict=True))
        host._state = state = ModelState()
        state.adding, state.db = False, alias
        hosts[row[hostname_at]] = host
    return hosts


def links_uplink_ensure(*, hosts: list[Host]) -> None:
    """Link new hosts to the core switch.

    Only done when a host is first seen: once an admin rewires or deletes the
    uplink, agents never put it back.
    """
    core = Host.objects.filter(hostname=settings.TWIN_CORE_HOSTNAME).first()
    if core is None:
        return
    # A concurrent batch that created the same host links it too: the unique
    # (source, target) pair turns the second insert into a no-op.
    objects_insert_new([Link(source_id=core.pk, target_id=h.pk) for h in hosts if h.pk != core.pk])


@dataclass(frozen=True, slots=True)
class InterfaceFacts:
    """What an agent says about one of its host's interfaces; ``None`` changes nothing."""

    name: str
    speed_mbps: int | None = None
    mac: str | None = None


def interfaces_record(*, facts: Mapping[int, list[InterfaceFacts]]) -> dict[tuple[int, str], int]:
    """Make the interfaces agents report exist, with their speed and MAC; (host id, name) → interface id.

    For locked hosts (the caller holds them, as ingest does): created on first
    report, updated only when the speed or MAC changed, so a steady agent
    writes nothing here.
    """
    if not facts:
        return {}
    stored = {(i.host_id, i.name): i for i in Interface.objects.filter(host_id__in=list(facts))}
    new, changed = [], []
    for host_id, interfaces in facts.items():
        for fact in interfaces:
            interface = stored.get((host_id, fact.name))
            if interface is None:
                new.append(Interface(host_id=host_id, name=fact.name, speed_mbps=fact.speed_mbps, mac=fact.mac or ""))
                continue
            speed = fact.speed_mbps if fact.speed_mbps is not None else interface.speed_mbps
            mac = fact.mac or interface.mac
            if (speed, mac) != (interface.speed_mbps, interface.mac):
                interface.speed_mbps, interface.mac = speed, mac
                changed.append(interface)
    if new:
        Interface.objects.bulk_create(new, ignore_conflicts=True)
        stored = {(i.host_id, i.name): i for i in Interface.objects.filter(host_id__in=list(facts))}
    if changed:
        Interface.objects.bulk_update(changed, ["speed_mbps", "mac"])
    return {key: interface.pk for key, interface in stored.items()}


@dataclass(frozen=True, slots=True)
class NeighbourFact:
    """What an agent's LLDP says is at the other end of one of its interfaces: a switch and its port."""

    host_id: int
    interface_id: int
    switch: str
    port: str | None = None


def links_learn(*, facts: list[NeighbourFact]) -> int:
    """Links from switches to hosts that agents' LLDP reports and the inventory lacks; how many were made.

    1. Only switches the inventory holds (virtual nodes, from a topology file
       or the admin): an agent names its neighbour, it does not create
       switches, so a host cannot draw nodes into the fabric.
    2. A pair already linked, either way round, is left as it is: a
       topology file and the admin win over what LLDP says.
    3. A new link runs from the switch down to the host, naming the host's
       interface and the switch's port (created on the switch when missing).
    4. A host that learned a link from a switch other than the core loses its
       default uplink to the core, as a topology file's does.
    For hosts the caller holds locked (ingest does); a steady fabric costs one
    query a batch that carries neighbours.
    """
    if not facts:
        return 0
    switches = {
        h.hostname: h
        for h in Host.objects.filter(hostname__in={f.switch for f in facts}, is_virtual=True).only("pk", "hostname")
    }
    wanted = [f for f in facts if f.switch in switches and switches[f.switch].pk != f.host_id]
    if not wanted:
        return 0
    host_ids = {f.host_id for f in wanted}
    switch_ids = {switches[f.switch].pk for f in wanted}
    linked = set(
        Link.objects.filter(
            models.Q(source_id__in=switch_ids, target_id__in=host_ids)
            | models.Q(source_id__in=host_ids, target_id__in=switch_ids)
        ).values_list("source_id", "target_id")
    )
    new: dict[tuple[int, int], NeighbourFact] = {}
    for fact in wanted:
        pair = (switches[fact.switch].pk, fact.host_id)
        if pair not in linked and pair[::-1] not in linked:
            new.setdefault(pair, fact)
    if not new:
        return 0
    ports = {(switch_id, fact.port) for (switch_id, _), fact in new.items() if fact.port}
    port_ids: dict[tuple[int, str], int] = {}
    if ports:
        Interface.objects.bulk_create([Interface(host_id=h, name=n) for h, n in sorted(ports)], ignore_conflicts=True)
        rows = Interface.objects.filter(host_id__in={h for h, _ in ports}).values_list("host_id", "name", "pk")
        port_ids = {(h, n): pk for h, n, pk in rows}
    objects_insert_new(
        [
            Link(
                source_id=switch_id,
                target_id=host_id,
                source_interface_id=port_ids.get((switch_id, fact.port)) if fact.port else None,
                target_interface_id=fact.interface_id,
            )
            for (switch_id, host_id), fact in new.items()
        ]
    )
    core = settings.TWIN_CORE_HOSTNAME
    rewired = {host_id for (switch_id, host_id), fact in new.items() if fact.switch != core}
    if rewired:
        Link.objects.filter(source__hostname=core, target_id__in=rewired).delete()
    return len(new)


@dataclass(frozen=True, slots=True)
class HostFacts:
    """What an agent says about its host; ``None`` means "not said" and changes nothing."""

    agent_version: str | None = None
    platform: str | None = None
    display_name: str | None = None
    ip: str | None = None
    rack: str | None = None
    position: tuple[float, float, float] | None = None


# The fields an agent's facts may write, and the ones that place a host.
FACT_FIELDS = ["agent_version", "platform", "display_name", "ip", "rack", "position_x", "position_y", "position_z"]
# Compared by column: reading ``host.rack`` would fetch the rack, one query per host.
_FACT_COLUMNS = [f"{f}_id" if f == "rack" else f for f in FACT_FIELDS]
PLACEMENT_FIELDS = frozenset({"rack", "position_x", "position_y", "position_z"})


def host_facts_apply(*, host: Host, facts: HostFacts, racks: dict[str, Rack]) -> bool:
    """Copy what the agent says onto its host (unsaved); True if anything changed.

    The rules, the same for registration and for every batch:
    - version, platform and address: the agent knows best;
    - display name: only while the host has none (an admin's name stays);
    - rack and position: only while no admin has placed the host
      (``placement_locked``; see ``host_admin_save``).
    """
    before = [getattr(host, f) for f in _FACT_COLUMNS]
    if facts.agent_version is not None:
        host.agent_version = facts.agent_version
    if facts.platform is not None:
        host.platform = facts.platform
    if facts.ip:
        host.ip = facts.ip
    if facts.display_name and not host.display_name:
        host.display_name = facts.display_name
    if not host.placement_locked:
        if facts.rack:
            host.rack = racks[facts.rack]
        if facts.position is not None:
            host.position_x, host.position_y, host.position_z = facts.position
    return before != [getattr(host, f) for f in _FACT_COLUMNS]


def hosts_facts_record(*, facts: dict[Host, HostFacts]) -> list[Host]:
    """Record what agents say about their (locked) hosts; return the hosts that changed.

    The racks they name are created on the way; the changed hosts are written
    in one statement and announced after commit.
    """
    racks = racks_ensure(names={f.rack for h, f in facts.items() if f.rack and not h.placement_locked})
    changed = [host for host, fact in facts.items() if host_facts_apply(host=host, facts=fact, racks=racks)]
    if changed:
        objects_update(changed, FACT_FIELDS)
        event_publish_on_commit(hosts_changed(hostnames=[h.hostname for h in changed]))
    return changed


def host_admin_save(*, host: Host, changed_fields: Iterable[str], old_hostname: str | None = None) -> None:
    """Save an admin's edit of a host.

    The admin is the source of truth for placement once it has touched it:
    editing the rack or position locks the placement against agents' reports,
    unless the same edit sets the lock itself.
    """
    changed = set(changed_fields)
    if PLACEMENT_FIELDS & changed and "placement_locked" not in changed:
        host.placement_locked = True
    host.save()
    if host.is_virtual:
        # A virtual node has no agent: a credential it held before stops working.
        credentials_revoke(credentials=host.credentials.all(), now=timezone.now())
    event_publish_on_commit(hosts_changed(hostnames={host.hostname, old_hostname or host.hostname}))


def inventory_save(*, obj: models.Model) -> None:
    """Save an admin's edit of a rack, a link or an inventory record; every host may look different."""
    obj.save()
    event_publish_on_commit(hosts_changed(hostnames=None))


def inventory_delete(*, objs: models.Model | QuerySet) -> None:
    """Delete inventory records (and what cascades from them); every host may look different."""
    objs.delete()
    event_publish_on_commit(hosts_changed(hostnames=None))


def enrollment_key_assign(*, key: EnrollmentKey) -> str:
    """Give an unsaved enrollment key its secret; return the secret, which is never stored."""
    secret = enrollment_key_generate()
    key.key_hash = enrollment_key_hash(secret)
    key.prefix = secret[:12]
    return secret


def enrollment_key_create(
    *, name: str, expires_at: datetime | None = None, max_uses: int | None = None
) -> tuple[EnrollmentKey, str]:
    """Create an enrollment key; return it with its secret, shown this once."""
    key = EnrollmentKey(name=name, expires_at=expires_at, max_uses=max_uses)
    secret = enrollment_key_assign(key=key)
    key.save()
    return key, secret


class RegistrationRefused(Refused):
    """Why a registration was refused: a machine-readable code, a sentence, and the HTTP status to answer.

    A 401 (no usable enrollment key) challenges the client for one, as any 401
    must (``WWW-Authenticate``); a 403 refuses a host that may not register
    whatever the key. ``common.errors.json_exception_handler`` answers it.
    """

    status = 401

    def __init__(self, code: str, detail: str, *, status: int = 401) -> None:
        super().__init__(
            code, detail, status=status, headers={"WWW-Authenticate": ENROLLMENT_CHALLENGE} if status == 401 else None
        )


@dataclass(frozen=True)
class Registration:
    """A registered host and the credential it was just given."""

    host: Host
    key_id: str
    signing_secret: str
    created: bool


def _enrollment_key_refuse(key: EnrollmentKey | None, *, now: datetime) -> None:
    """Refuse, with the reason, an enrollment key that cannot register a host now."""
    if key is None:
        raise RegistrationRefused("unknown_enrollment_key", "The enrollment key is not known to this twin.")
    if key.revoked_at is not None:
        raise RegistrationRefused("enrollment_key_revoked", "The enrollment key was revoked.")
    if key.expires_at is not None and key.expires_at <= now:
        raise RegistrationRefused("enrollment_key_expired", "The enrollment key has expired.")
    if key.max_uses is not None and key.uses >= key.max_uses:
        raise RegistrationRefused("enrollment_key_used_up", "The enrollment key has been used its maximum times.")


def enrollment_key_check(*, secret: str, now: datetime) -> None:
    """Refuse a key that could not register a host, before anything else about the request is read.

    A stranger's request then costs one indexed lookup: its body is never
    read nor inflated. ``host_register`` checks again under a row lock, as it
    counts the use.
    """
    _enrollment_key_refuse(EnrollmentKey.objects.filter(key_hash=enrollment_key_hash(secret)).first(), now=now)


def _enrollment_key_use(*, secret: str, now: datetime) -> EnrollmentKey:
    """Find and count one use of an enrollment key, or refuse with the reason."""
    key = EnrollmentKey.objects.select_for_update().filter(key_hash=enrollment_key_hash(secret)).first()
    _enrollment_key_refuse(key, now=now)
    assert key is not None
    key.uses = F("uses") + 1
    key.save(update_fields=["uses"])
    return key


@transaction.atomic
def host_register(*, enrollment_secret: str, request: HostRegistrationRequest, now: datetime) -> Registration:
    """Register a host (or register it again) and give it a fresh credential.

    1. Count a use of the enrollment key, refusing an unknown, revoked,
       expired or used-up one.
    2. Create the host (pending approval when ``TWIN_REQUIRE_APPROVAL``) or
       lock the existing one. A virtual node (the core switch) has no agent:
       it is never registered (its facts come from the admin, its samples
       from a host granted to report for it).
    3. Record what the agent says about it; placement only if no admin set it.
    4. Revoke its active credential and issue a new one: the old key stops
       working at the commit.
    """
    enrollment = _enrollment_key_use(secret=enrollment_secret, now=now)
    created = not Host.objects.filter(hostname=request.hostname).exists()
    host = hosts_lock_or_create(hostnames=[request.hostname])[request.hostname]
    if host.is_virtual:
        raise RegistrationRefused(
            "virtual_host",
            f"{host.hostname} is a virtual node and has no agent of its own; an admin can grant a registered "
            "host the right to report for it.",
            status=403,
        )
    if created and settings.TWIN_REQUIRE_APPROVAL:
        host.approved = False
        host.save(update_fields=["approved"])
    position = request.position
    facts = HostFacts(
        agent_version=request.agent_version,
        platform=request.platform,
        display_name=request.display_name,
        ip=request.ip,
        rack=request.rack,
        position=(position.x, position.y, position.z) if position is not None else None,
    )
    hosts_facts_record(facts={host: facts})
    AgentCredential.objects.filter(host=host, revoked_at__isnull=True).update(revoked_at=now)
    key_id = key_id_generate()
    AgentCredential.objects.create(host=host, key_id=key_id, enrollment_key=enrollment)
    event_publish_on_commit(hosts_changed(hostnames=[host.hostname]))
    return Registration(host=host, key_id=key_id, signing_secret=signing_secret_for(key_id), created=created)


def credentials_revoke(*, credentials: QuerySet[AgentCredential], now: datetime) -> int:
    """Revoke credentials; their agents' next batch is refused."""
    return credentials.filter(revoked_at__isnull=True).update(revoked_at=now)


def enrollment_keys_revoke(*, keys: QuerySet[EnrollmentKey], now: datetime) -> int:
    """Revoke enrollment keys: no further registration with them."""
    return keys.filter(revoked_at__isnull=True).update(revoked_at=now)


def hosts_approve(*, hosts: QuerySet[Host]) -> int:
    """Approve pending hosts: their agents' batches are accepted from now on."""
    pending = hosts.filter(approved=False)
    names = list(pending.values_list("hostname", flat=True))
    count = pending.update(approved=True)
    event_publish_on_commit(hosts_changed(hostnames=names))
    return count
