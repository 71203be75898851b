"""Writes to the inventory: hosts, racks, links and placement."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, QuerySet

from hosts.credentials import enrollment_key_generate, enrollment_key_hash, key_id_generate, signing_secret_for
from hosts.models import AgentCredential, EnrollmentKey, Host, Link, Rack
from hosts.schema import HostRegistrationRequest
from twin.events import twin_changed_on_commit

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

    ``ignore_conflicts`` lets two batches name a new rack at once without an
    IntegrityError: the loser's insert is skipped and both read the same row.
    """
    wanted = set(names)
    if not wanted:
        return {}
    Rack.objects.bulk_create([Rack(name=n) for n in sorted(wanted)], ignore_conflicts=True)
    return {r.name: r for r in Rack.objects.filter(name__in=wanted)}


def hosts_lock_or_create(*, hostnames: Iterable[str]) -> dict[str, Host]:
    """Return these hosts, row-locked for the surrounding transaction, creating missing ones.

    1. Lock the known rows in hostname order. Concurrent batches for
       overlapping hosts then queue behind each other instead of deadlocking,
       and the latest values they compute from the stored ones cannot interleave.
    2. If some are new: insert them (skipping any a concurrent batch just
       created), lock again, and give each an uplink to the core switch (see
       ``links_uplink_ensure``).
    """
    wanted = sorted(set(hostnames))
    if not wanted:
        return {}
    locked = _hosts_lock(wanted)
    missing = [h for h in wanted if h not in locked]
    if missing:
        Host.objects.bulk_create([Host(hostname=h) for h in missing], ignore_conflicts=True)
        locked = _hosts_lock(wanted)
        links_uplink_ensure(hosts=[locked[h] for h in missing])
    return locked


def _hosts_lock(hostnames: list[str]) -> dict[str, Host]:
    # Plain SQL into model instances: every batch runs this, and building the
    # ORM query cost more than running it (bench/analysis.md).
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    hosts = Host.objects.raw(
        f"SELECT * FROM {Host._meta.db_table} WHERE hostname IN ({', '.join(['%s'] * len(hostnames))}) "
        f"ORDER BY hostname{lock}",
        hostnames,
    )
    return {h.hostname: h for h in hosts}


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
    Link.objects.bulk_create([Link(source=core, target=h) for h in hosts if h.pk != core.pk], ignore_conflicts=True)


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


class RegistrationRefused(Exception):
    """Why a registration was refused: a machine-readable code and a sentence."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Registration:
    """A registered host and the credential it was just given."""

    host: Host
    key_id: str
    signing_secret: str
    created: bool


def _enrollment_key_use(*, secret: str, now: datetime) -> EnrollmentKey:
    """Find and count one use of an enrollment key, or refuse with the reason."""
    key = EnrollmentKey.objects.select_for_update().filter(key_hash=enrollment_key_hash(secret)).first()
    if key is None:
        raise RegistrationRefused("unknown_enrollment_key", "The enrollment key is not known to this twin.")
    if key.revoked_at is not None:
        raise RegistrationRefused("enrollment_key_revoked", "The enrollment key was revoked.")
    if key.expires_at is not None and key.expires_at <= now:
        raise RegistrationRefused("enrollment_key_expired", "The enrollment key has expired.")
    if key.max_uses is not None and key.uses >= key.max_uses:
        raise RegistrationRefused("enrollment_key_used_up", "The enrollment key has been used its maximum times.")
    key.uses = F("uses") + 1
    key.save(update_fields=["uses"])
    return key


@transaction.atomic
def host_register(*, enrollment_secret: str, request: HostRegistrationRequest, now: datetime) -> Registration:
    """Register a host (or register it again) and give it a fresh credential.

    1. Count a use of the enrollment key, refusing an unknown, revoked,
       expired or used-up one.
    2. Create the host (pending approval when ``TWIN_REQUIRE_APPROVAL``) or
       lock the existing one.
    3. Record what the agent says about it; placement only if no admin set it.
    4. Revoke its active credential and issue a new one: the old key stops
       working at the commit.
    """
    enrollment = _enrollment_key_use(secret=enrollment_secret, now=now)
    created = not Host.objects.filter(hostname=request.hostname).exists()
    host = hosts_lock_or_create(hostnames=[request.hostname])[request.hostname]
    if created and settings.TWIN_REQUIRE_APPROVAL:
        host.approved = False
    host.platform, host.agent_version = request.platform, request.agent_version
    if request.display_name and not host.display_name:
        host.display_name = request.display_name
    if request.ip:
        host.ip = request.ip
    if not host.placement_locked:
        if request.rack:
            host.rack = racks_ensure(names=[request.rack])[request.rack]
        if request.position is not None:
            host.position_x, host.position_y, host.position_z = (
                request.position.x,
                request.position.y,
                request.position.z,
            )
    host.save()
    AgentCredential.objects.filter(host=host, revoked_at__isnull=True).update(revoked_at=now)
    key_id = key_id_generate()
    AgentCredential.objects.create(host=host, key_id=key_id, enrollment_key=enrollment)
    twin_changed_on_commit()
    return Registration(host=host, key_id=key_id, signing_secret=signing_secret_for(key_id), created=created)


def credentials_revoke(*, credentials: QuerySet[AgentCredential], now: datetime) -> int:
    """Revoke credentials; their agents' next batch is refused."""
    return credentials.filter(revoked_at__isnull=True).update(revoked_at=now)


def enrollment_keys_revoke(*, keys: QuerySet[EnrollmentKey], now: datetime) -> int:
    """Revoke enrollment keys: no further registration with them."""
    return keys.filter(revoked_at__isnull=True).update(revoked_at=now)


def hosts_approve(*, hosts: QuerySet[Host]) -> int:
    """Approve pending hosts: their agents' batches are accepted from now on."""
    count = hosts.filter(approved=False).update(approved=True)
    twin_changed_on_commit()
    return count
