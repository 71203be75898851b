"""Shapes and rules of what agents send about their hosts."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Protocol, TypedDict, TypeVar

import msgspec
from django.core.exceptions import ValidationError

from common.jsondecode import JsonRefused, json_decode
from common.text import text

# RFC 1123: dot-separated labels of letters, digits and inner hyphens, each at
# most 63 characters, 253 in all. ASCII only, so look-alike letters from other
# scripts cannot impersonate a host. Matched whole (``fullmatch``): with ``$``,
# "titan-01\n" passed and became a second host beside "titan-01".
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
HOSTNAME_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
HOSTNAME_MAX_LENGTH = 253
HOSTNAME_INVALID = "hostname is not a valid RFC 1123 host name (ASCII letters, digits, inner hyphens, dots)"

# Free text from agents follows the one rule of common.text.
Hostname = Annotated[str, msgspec.Meta(min_length=1, max_length=HOSTNAME_MAX_LENGTH)]
ShortText = text(max_length=128)
RackName = text(min_length=1, max_length=64)
DisplayName = text(max_length=200)


class NamesAHost(Protocol):
    hostname: str


T = TypeVar("T", bound=NamesAHost)


def decode_naming_a_host(
    decoder: msgspec.json.Decoder[T], data: bytes | msgspec.Raw, *, checked: bool = False
) -> T | str:
    """Decode a Struct that names a host; return it with its hostname normalised, or the reason it is refused.

    ``checked``: ``data`` is part of a body whose depth ``json_decode`` already checked.
    """
    try:
        decoded = json_decode(decoder, data, checked=checked)
    except JsonRefused as exc:
        return str(exc)
    hostname = hostname_normalize(decoded.hostname)
    if hostname is None:
        return HOSTNAME_INVALID
    decoded.hostname = hostname
    return decoded


def hostname_validate(value: str) -> None:
    """Django validator: a valid hostname, stored as ``hostname_normalize`` writes it (lower case)."""
    if hostname_normalize(value) != value:
        raise ValidationError(
            f"{HOSTNAME_INVALID[:1].upper()}{HOSTNAME_INVALID[1:]}, in lower case.", code="invalid_hostname"
        )


def hostname_normalize(hostname: str) -> str | None:
    """The lower-cased hostname, or None when it is not a valid RFC 1123 name.

    Non-ASCII is refused before lower-casing: ``"\u212a8s"`` (a Kelvin sign)
    lower-cases to the ASCII ``"k8s"``.
    """
    if len(hostname) > HOSTNAME_MAX_LENGTH or not hostname.isascii():
        return None
    name = hostname.lower()
    if HOSTNAME_RE.fullmatch(name) is None:
        return None
    return name


class Position(msgspec.Struct, forbid_unknown_fields=True):
    """A host's place in the twin's 3D space."""

    x: float
    y: float
    z: float


class HostRegistrationRequest(msgspec.Struct, forbid_unknown_fields=True):
    """What an agent says about its host when it registers (``POST /api/hosts/register``)."""

    hostname: Hostname
    platform: ShortText
    agent_version: ShortText
    display_name: DisplayName | None = None
    ip: Annotated[str, msgspec.Meta(max_length=45)] | None = None
    rack: RackName | None = None
    position: Position | None = None


class HostRegistrationResponse(TypedDict):
    """The host's own credentials and what the server expects of its agent."""

    hostname: str
    keyId: str
    signingSecret: str
    approved: bool
    heartbeatIntervalSeconds: int
    signatureWindowSeconds: float
    twinId: str
    serverTime: str


_registration_decoder = msgspec.json.Decoder(HostRegistrationRequest)


def registration_validate(body: bytes) -> HostRegistrationRequest | str:
    """Decode and check a registration; return it, or the reason it is refused."""
    request = decode_naming_a_host(_registration_decoder, body)
    if isinstance(request, str):
        return request
    if request.ip is not None:
        address = ip_normalize(request.ip)
        if address is None:
            return "ip is not an IPv4 or IPv6 address (without a zone such as %eth0)"
        request.ip = address
    return request


def ip_normalize(ip: str) -> str | None:
    """The address in its canonical form, or None.

    Python accepts an IPv6 zone (``fe80::1%eth0``, any characters after the
    ``%``); the database's address column does not, so a zone is refused.
    """
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if getattr(address, "scope_id", None) is not None:
        return None
    return str(address)
