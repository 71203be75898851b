"""Deltas: an old state plus the delta is the new state."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from hosts.models import Host, Link, Rack
from tests.conftest import sample_dict
from twin.delta import delta_apply, delta_bytes, delta_fields, delta_is_empty, state_diff
from twin.snapshot import snapshot_build


def by_key(state):
    return {h["hostname"]: h for h in state["hosts"]}, {link["id"]: link for link in state["links"]}


@pytest.mark.django_db
@pytest.mark.usefixtures("open_twin")
def test_old_state_plus_delta_is_the_new_state(post_batch):
    post_batch([sample_dict(f"h-{i}") for i in range(5)])
    before = snapshot_build()
    post_batch([sample_dict("h-1", cpu_load=99.0), sample_dict("h-new")])
    Host.objects.filter(hostname="h-3").delete()
    after = snapshot_build()
    delta = state_diff(before=before, after=after, version=8)
    assert (delta["version"], delta["baseVersion"]) == (8, 7)
    assert by_key(delta_apply(before, delta)) == by_key(after)


@pytest.mark.django_db
@pytest.mark.usefixtures("open_twin")
def test_a_delta_carries_only_what_changed(post_batch):
    post_batch([sample_dict(f"h-{i}") for i in range(5)])
    before = snapshot_build()
    post_batch([sample_dict("h-1", cpu_load=99.0)])
    delta = state_diff(before=before, after=snapshot_build(), version=1)
    # h-1's metrics and the core switch's lastSeen moved; nothing else did.
    assert {h["hostname"] for h in delta["hosts"]} <= {"h-1", "core-switch"}
    assert "h-1" in {h["hostname"] for h in delta["hosts"]}
    assert delta["removedHosts"] == [] and delta["removedLinks"] == []


@pytest.mark.django_db
@pytest.mark.usefixtures("open_twin")
def test_removed_hosts_and_links_are_named(post_batch):
    post_batch([sample_dict("h-1"), sample_dict("h-2")])
    before = snapshot_build()
    Link.objects.filter(target__hostname="h-2").delete()
    Host.objects.filter(hostname="h-1").delete()
    delta = state_diff(before=before, after=snapshot_build(), version=1)
    assert delta["removedHosts"] == ["h-1"]
    assert sorted(delta["removedLinks"]) == ["core-switch::h-1", "core-switch::h-2"]


@pytest.mark.django_db
@pytest.mark.usefixtures("open_twin")
def test_a_status_change_by_the_clock_is_a_delta(post_batch):
    post_batch([sample_dict("h-1")])
    now = timezone.now()
    delta = state_diff(before=snapshot_build(now=now), after=snapshot_build(now=now + timedelta(seconds=31)), version=1)
    assert {h["hostname"]: h["status"] for h in delta["hosts"]}["h-1"] == "stale"


@pytest.mark.django_db
@pytest.mark.usefixtures("open_twin")
def test_two_identical_states_give_an_empty_delta(post_batch):
    post_batch([sample_dict("h-1")])
    now = timezone.now()
    assert delta_is_empty(state_diff(before=snapshot_build(now=now), after=snapshot_build(now=now), version=1))


# --------------------------------------------------------------------------- the fields form


@pytest.mark.django_db
@pytest.mark.usefixtures("open_twin")
def test_old_state_plus_a_fields_delta_is_the_new_state(post_batch):
    post_batch([sample_dict(f"h-{i}") for i in range(5)])
    before = snapshot_build()
    post_batch([sample_dict("h-1", cpu_load=99.0), sample_dict("h-new")])
    Host.objects.filter(hostname="h-3").delete()
    after = snapshot_build()
    fields = delta_fields(delta=state_diff(before=before, after=after, version=8), before=before)
    assert fields["fields"] is True and (fields["version"], fields["baseVersion"]) == (8, 7)
    assert by_key(delta_apply(before, fields)) == by_key(after)


@pytest.mark.django_db
@pytest.mark.usefixtures("open_twin")
def test_a_fields_delta_carries_a_status_flip_as_the_hostname_and_the_status(post_batch):
    post_batch([sample_dict(f"h-{i}") for i in range(5)])
    now = timezone.now()
    before, after = snapshot_build(now=now), snapshot_build(now=now + timedelta(seconds=31))
    whole = state_diff(before=before, after=after, version=1)
    fields = delta_fields(delta=whole, before=before)
    flips = {h["hostname"]: h for h in fields["hosts"]}
    assert flips["h-1"] == {"hostname": "h-1", "status": "stale"}
    assert delta_bytes(fields) * 5 < delta_bytes(whole)


@pytest.mark.django_db
@pytest.mark.usefixtures("open_twin")
def test_a_fields_delta_carries_only_the_metrics_that_moved(post_batch):
    post_batch([sample_dict("h-1")])
    before = snapshot_build()
    post_batch([sample_dict("h-1", cpu_load=99.0)])
    fields = delta_fields(delta=state_diff(before=before, after=snapshot_build(), version=1), before=before)
    host = {h["hostname"]: h for h in fields["hosts"]}["h-1"]
    assert host["metrics"]["cpuLoad"] == 99.0
    assert "position" not in host and "displayName" not in host


@pytest.mark.django_db
@pytest.mark.usefixtures("open_twin")
def test_a_host_that_lost_a_key_is_replaced_whole(post_batch):
    post_batch([{**sample_dict("h-1"), "rack": "R1"}])
    before = snapshot_build()
    Host.objects.filter(hostname="h-1").update(rack=None)
    Rack.objects.filter(name="R1").delete()
    after = snapshot_build()
    fields = delta_fields(delta=state_diff(before=before, after=after, version=1), before=before)
    assert "h-1" in fields["removedHosts"]
    assert {h["hostname"]: h for h in fields["hosts"]}["h-1"] == {h["hostname"]: h for h in after["hosts"]}["h-1"]
    assert by_key(delta_apply(before, fields)) == by_key(after)


# Random states and random changes between them: any key changed, added or
# dropped, any metric, hosts and links added and removed.
NAMES = st.sampled_from([f"h-{i}" for i in range(8)])
VALUES = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(["online", "stale", "offline"]))
HOST_KEYS = st.sampled_from(["status", "lastSeen", "ip", "rack", "reachable", "position"])
METRIC_KEYS = st.sampled_from(["cpuLoad", "memoryUsedPercent", "gpuUtil"])


def host_docs() -> st.SearchStrategy[dict[str, dict]]:
    doc = st.builds(
        lambda keys, metrics: {**keys, "metrics": metrics},
        st.dictionaries(HOST_KEYS, VALUES, max_size=6),
        st.dictionaries(METRIC_KEYS, VALUES, max_size=3),
    )
    return st.dictionaries(NAMES, doc, max_size=8)


def state_of(hosts: dict[str, dict], links: dict[str, dict]) -> dict:
    return {
        "type": "twin-state",
        "twinId": "t",
        "generatedAt": "now",
        "hosts": [{"hostname": name, **doc} for name, doc in sorted(hosts.items())],
        "links": [{"id": key, **doc} for key, doc in links.items()],
    }


LINKS = st.dictionaries(
    st.sampled_from(["a::b", "a::c", "b::c"]),
    st.dictionaries(st.sampled_from(["utilization", "throughputGbps", "source"]), VALUES, max_size=3),
    max_size=3,
)


@settings(max_examples=200, deadline=None)
@given(before_hosts=host_docs(), after_hosts=host_docs(), before_links=LINKS, after_links=LINKS)
def test_any_state_plus_its_fields_delta_is_exactly_the_next_state(
    before_hosts, after_hosts, before_links, after_links
):
    before, after = state_of(before_hosts, before_links), state_of(after_hosts, after_links)
    fields = delta_fields(delta=state_diff(before=before, after=after, version=2), before=before)
    applied = delta_apply(before, fields)
    assert applied["hosts"] == after["hosts"]
    assert by_key(applied)[1] == by_key(after)[1]
    assert applied["version"] == 2
