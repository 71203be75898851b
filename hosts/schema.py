"""Shapes and rules of what agents send about their hosts."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Protocol, TypedDict, TypeVar

import msgspec

# RFC 1123: dot-separated labels of letters, digits and inner hyphens, each at
# most 63 characters, 253 in all. ASCII only, so look-alike letters from other
# scripts cannot impersonate a host.
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
HOSTNAME_RE = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
HOSTNAME_MAX_LENGTH = 253
HOSTNAME_INVALID = "hostname is not a valid RFC 1123 host name (ASCII letters, digits, inner hyphens, dots)"

# Free text from agents: printable only. PostgreSQL cannot store a NUL, and
# control characters have no business in a name shown on a dashboard.
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
Hostname = Annotated[str, msgspec.Meta(min_length=1, max_length=HOSTNAME_MAX_LENGTH)]
ShortText = Annotated[str, msgspec.Meta(max_length=128, pattern=PRINTABLE)]
RackName = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=PRINTABLE)]


class NamesAHost(Protocol):
    hostname: str


T = TypeVar("T", bound=NamesAHost)


def decode_naming_a_host(decoder: msgspec.json.Decoder[T], data: bytes | msgspec.Raw) -> T | str:
    """Decode a Struct that names a host; return it with its hostname normalised, or the reason it is refused."""
    try:
        decoded = decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        return str(exc)
    hostname = hostname_normalize(decoded.hostname)
    if hostname is None:
        return HOSTNAME_INVALID
    decoded.hostname = hostname
    return decoded


def hostname_normalize(hostname: str) -> str | None:
    """The lower-cased hostname, or None when it is not a valid RFC 1123 name."""
    name = hostname.lower()
    if len(name) > HOSTNAME_MAX_LENGTH or not HOSTNAME_RE.match(name):
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
    display_name: Annotated[str, msgspec.Meta(max_length=200, pattern=PRINTABLE)] | None = None
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
        try:
            request.ip = str(ipaddress.ip_address(request.ip))
        except ValueError:
            return "ip is not an IPv4 or IPv6 address"
    return request
