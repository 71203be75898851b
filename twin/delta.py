"""Deltas between two twin states: only the hosts and links that changed.

At 10,000 hosts a full state is megabytes; a dashboard that subscribes to
deltas receives, per change, the few hosts that moved. ``delta_apply`` is the
reference a client follows (and the tests check: old state + delta == new state).

Two forms (docs/api.md, "The delta stream"):
- whole (``state_diff``): each changed host or link as its whole document;
- fields (``delta_fields``, ``"fields": true``): each changed host as its
  ``hostname`` and the keys that changed, its ``metrics`` merged key by key,
  each changed link as its ``id`` and the keys that changed. A status flip is
  a few dozen bytes instead of the host's half kilobyte, so a change to
  thousands of hosts still fits in one delta. A host or link that is new, or
  that lost a key (a host taken out of its rack), comes whole, and one that
  lost a key is also named in ``removedHosts``/``removedLinks``: removals are
  applied first, so it is replaced rather than merged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NotRequired, TypedDict

import orjson

from twin.snapshot import HostDoc, LinkDoc, TwinState


class TwinDelta(TypedDict):
    """``twin-delta``: what changed between version ``baseVersion`` and ``version``.

    A resync signal (``resync`` true, ``baseVersion`` null, nothing changed in
    it) follows no version a client holds, so every client re-reads the state.
    In the fields form (``fields`` true) ``hosts`` and ``links`` hold partial
    documents (``delta_fields``).
    """

    type: str
    twinId: str
    version: int
    baseVersion: int | None
    generatedAt: str
    hosts: list[HostDoc]
    removedHosts: list[str]
    links: list[LinkDoc]
    removedLinks: list[str]
    resync: NotRequired[bool]
    fields: NotRequired[bool]


# The key a host's partial document merges key by key; every other key is replaced whole.
MERGED_KEY = "metrics"
# A key a document does not have (None is a value).
_ABSENT: Any = object()


def state_diff(*, before: TwinState, after: TwinState, version: int) -> TwinDelta:
    """The delta that turns ``before`` (at ``version - 1``) into ``after`` (at ``version``)."""
    old_hosts = {h["hostname"]: h for h in before["hosts"]}
    new_hosts = {h["hostname"]: h for h in after["hosts"]}
    old_links = {link["id"]: link for link in before["links"]}
    new_links = {link["id"]: link for link in after["links"]}
    return {
        "type": "twin-delta",
        "twinId": after["twinId"],
        "version": version,
        "baseVersion": version - 1,
        "generatedAt": after["generatedAt"],
        "hosts": [h for name, h in new_hosts.items() if old_hosts.get(name) != h],
        "removedHosts": [name for name in old_hosts if name not in new_hosts],
        "links": [link for key, link in new_links.items() if old_links.get(key) != link],
        "removedLinks": [key for key in old_links if key not in new_links],
    }


def _patch(old: Mapping[str, Any], new: Mapping[str, Any], *, key: str) -> dict[str, Any] | None:
    """``new`` as its ``key`` and what differs from ``old``, ``MERGED_KEY`` key by key; None if ``new`` lost a key."""
    if not old.keys() <= new.keys():
        return None
    patch: dict[str, Any] = {key: new[key]}
    for name, value in new.items():
        before = old.get(name, _ABSENT)
        if before == value:
            continue
        if name == MERGED_KEY and isinstance(value, dict) and isinstance(before, dict):
            if not before.keys() <= value.keys():
                return None
            patch[name] = {k: v for k, v in value.items() if before.get(k, _ABSENT) != v}
        else:
            patch[name] = value
    return patch


def _partials(
    changed: list[Any], old: Mapping[str, Mapping[str, Any]], *, key: str
) -> tuple[list[dict[str, Any]], list[str]]:
    """The partial documents of ``changed`` against ``old``, and the keys of those replaced whole for a lost key."""
    partials: list[dict[str, Any]] = []
    replaced: list[str] = []
    for doc in changed:
        before = old.get(doc[key])
        patch = None if before is None else _patch(before, doc, key=key)
        if patch is None:
            partials.append(doc)
            if before is not None:
                replaced.append(doc[key])
        else:
            partials.append(patch)
    return partials, replaced


def delta_fields(*, delta: TwinDelta, before: TwinState) -> TwinDelta:
    """``delta`` (whole, from ``state_diff(before=before, ...)``) in the fields form: only the keys that changed.

    Removals come first in ``delta_apply``: a document that lost a key is
    named there too and comes whole, so it replaces the old one.
    """
    old_hosts = {h["hostname"]: h for h in before["hosts"]} if delta["hosts"] else {}
    old_links = {link["id"]: link for link in before["links"]} if delta["links"] else {}
    hosts, replaced_hosts = _partials(delta["hosts"], old_hosts, key="hostname")
    links, replaced_links = _partials(delta["links"], old_links, key="id")
    return {
        **delta,
        "hosts": hosts,  # type: ignore[typeddict-item]
        "removedHosts": [*delta["removedHosts"], *replaced_hosts],
        "links": links,  # type: ignore[typeddict-item]
        "removedLinks": [*delta["removedLinks"], *replaced_links],
        "fields": True,
    }


def delta_bytes(document: Mapping[str, Any]) -> int:
    """The size of a delta (or a state) as JSON, as the live side encodes it (orjson)."""
    return len(orjson.dumps(document))


def delta_is_empty(delta: TwinDelta) -> bool:
    return not (delta["hosts"] or delta["removedHosts"] or delta["links"] or delta["removedLinks"])


def delta_size(delta: TwinDelta) -> int:
    """How many hosts and links a delta carries or removes."""
    return len(delta["hosts"]) + len(delta["removedHosts"]) + len(delta["links"]) + len(delta["removedLinks"])


def delta_resync_signal(*, after: TwinState, version: int) -> TwinDelta:
    """Instead of a delta too large to send to every delta listener: "re-read the state at ``version``".

    Its ``baseVersion`` is null, which no client holds, so a client applies
    nothing and emits ``resync``, as on any gap (docs/api.md, "The delta
    stream"); the state it then receives carries ``version``.
    """
    return {
        "type": "twin-delta",
        "twinId": after["twinId"],
        "version": version,
        "baseVersion": None,
        "generatedAt": after["generatedAt"],
        "hosts": [],
        "removedHosts": [],
        "links": [],
        "removedLinks": [],
        "resync": True,
    }


def _merged(old: dict[str, Any] | None, patch: dict[str, Any]) -> dict[str, Any]:
    """A document a client holds with a partial one applied (``MERGED_KEY`` key by key); ``patch`` if it is new."""
    if old is None:
        return patch
    merged = {**old, **patch}
    if isinstance(patch.get(MERGED_KEY), dict) and isinstance(old.get(MERGED_KEY), dict):
        merged[MERGED_KEY] = {**old[MERGED_KEY], **patch[MERGED_KEY]}
    return merged


def delta_apply(state: dict[str, Any], delta: TwinDelta) -> dict[str, Any]:
    """Apply a delta to a state a client holds; hosts by hostname, links by id.

    1. Drop the removed hosts and links.
    2. Whole form: replace or add each document the delta carries. Fields
       form: merge each partial document into the one held (``metrics`` key
       by key), or add it if none is held.
    """
    fields = delta.get("fields", False)
    hosts = {h["hostname"]: h for h in state["hosts"]}
    for name in delta["removedHosts"]:
        hosts.pop(name, None)
    for host in delta["hosts"]:
        name = host["hostname"]
        hosts[name] = _merged(hosts.get(name), host) if fields else host  # type: ignore[arg-type]
    links = {link["id"]: link for link in state["links"]}
    for key in delta["removedLinks"]:
        links.pop(key, None)
    for link in delta["links"]:
        links[link["id"]] = _merged(links.get(link["id"]), link) if fields else link  # type: ignore[arg-type]
    return {
        **state,
        "generatedAt": delta["generatedAt"],
        "version": delta["version"],
        "hosts": [hosts[name] for name in sorted(hosts)],
        "links": list(links.values()),
    }
