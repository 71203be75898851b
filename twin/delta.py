"""Deltas between two twin states: only the hosts and links that changed.

At 10,000 hosts a full state is megabytes; a dashboard that subscribes to
deltas receives, per change, the few hosts that moved. ``delta_apply`` is the
reference a client follows (and the tests check: old state + delta == new state).
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

from twin.snapshot import HostDoc, LinkDoc, TwinState


class TwinDelta(TypedDict):
    """``twin-delta``: what changed between version ``baseVersion`` and ``version``.

    A resync signal (``resync`` true, ``baseVersion`` null, nothing changed in
    it) follows no version a client holds, so every client re-reads the state.
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


def delta_apply(state: dict[str, Any], delta: TwinDelta) -> dict[str, Any]:
    """Apply a delta to a state a client holds; hosts by hostname, links by id."""
    hosts = {h["hostname"]: h for h in state["hosts"]}
    for name in delta["removedHosts"]:
        hosts.pop(name, None)
    hosts.update({h["hostname"]: h for h in delta["hosts"]})
    links = {link["id"]: link for link in state["links"]}
    for key in delta["removedLinks"]:
        links.pop(key, None)
    links.update({link["id"]: link for link in delta["links"]})
    return {
        **state,
        "generatedAt": delta["generatedAt"],
        "version": delta["version"],
        "hosts": [hosts[name] for name in sorted(hosts)],
        "links": list(links.values()),
    }
