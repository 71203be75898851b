"""Deltas: an old state plus the delta is the new state."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from hosts.models import Host, Link
from tests.conftest import sample_dict
from twin.delta import delta_apply, delta_is_empty, state_diff
from twin.snapshot import snapshot_build

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("open_twin")]


def by_key(state):
    return {h["hostname"]: h for h in state["hosts"]}, {link["id"]: link for link in state["links"]}


def test_old_state_plus_delta_is_the_new_state(post_batch):
    post_batch([sample_dict(f"h-{i}") for i in range(5)])
    before = snapshot_build()
    post_batch([sample_dict("h-1", cpu_load=99.0), sample_dict("h-new")])
    Host.objects.filter(hostname="h-3").delete()
    after = snapshot_build()
    delta = state_diff(before=before, after=after, version=8)
    assert (delta["version"], delta["baseVersion"]) == (8, 7)
    assert by_key(delta_apply(before, delta)) == by_key(after)


def test_a_delta_carries_only_what_changed(post_batch):
    post_batch([sample_dict(f"h-{i}") for i in range(5)])
    before = snapshot_build()
    post_batch([sample_dict("h-1", cpu_load=99.0)])
    delta = state_diff(before=before, after=snapshot_build(), version=1)
    # h-1's metrics and the core switch's lastSeen moved; nothing else did.
    assert {h["hostname"] for h in delta["hosts"]} <= {"h-1", "core-switch"}
    assert "h-1" in {h["hostname"] for h in delta["hosts"]}
    assert delta["removedHosts"] == [] and delta["removedLinks"] == []


def test_removed_hosts_and_links_are_named(post_batch):
    post_batch([sample_dict("h-1"), sample_dict("h-2")])
    before = snapshot_build()
    Link.objects.filter(target__hostname="h-2").delete()
    Host.objects.filter(hostname="h-1").delete()
    delta = state_diff(before=before, after=snapshot_build(), version=1)
    assert delta["removedHosts"] == ["h-1"]
    assert sorted(delta["removedLinks"]) == ["core-switch::h-1", "core-switch::h-2"]


def test_a_status_change_by_the_clock_is_a_delta(post_batch):
    post_batch([sample_dict("h-1")])
    now = timezone.now()
    delta = state_diff(before=snapshot_build(now=now), after=snapshot_build(now=now + timedelta(seconds=31)), version=1)
    assert {h["hostname"]: h["status"] for h in delta["hosts"]}["h-1"] == "stale"


def test_two_identical_states_give_an_empty_delta(post_batch):
    post_batch([sample_dict("h-1")])
    now = timezone.now()
    assert delta_is_empty(state_diff(before=snapshot_build(now=now), after=snapshot_build(now=now), version=1))
