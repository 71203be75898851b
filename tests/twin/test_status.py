"""Status, derived from stored facts and the clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from twin.status import HostStatus, host_status, virtual_status

NOW = datetime(2025, 11, 1, 2, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("silence", "expected"),
    [(0, "online"), (29.9, "online"), (30, "stale"), (119.9, "stale"), (120, "offline"), (86400, "offline")],
)
def test_status_follows_the_silence_since_the_last_sample(silence, expected):
    assert host_status(last_seen=NOW - timedelta(seconds=silence), now=NOW) == expected


def test_a_host_that_never_reported_is_unknown():
    assert host_status(last_seen=None, now=NOW) == HostStatus.UNKNOWN


def test_the_thresholds_are_settings(settings):
    settings.TWIN_STALE_AFTER_SECONDS = 5
    settings.TWIN_OFFLINE_AFTER_SECONDS = 10
    assert host_status(last_seen=NOW - timedelta(seconds=6), now=NOW) == HostStatus.STALE
    assert host_status(last_seen=NOW - timedelta(seconds=11), now=NOW) == HostStatus.OFFLINE


def test_a_virtual_node_is_online_while_any_neighbour_is_online():
    neighbours = [HostStatus.OFFLINE, HostStatus.ONLINE, HostStatus.UNKNOWN]
    assert virtual_status(own=None, neighbours=neighbours) == HostStatus.ONLINE


def test_a_virtual_node_is_as_alive_as_its_liveliest_neighbour():
    assert virtual_status(own=None, neighbours=[HostStatus.OFFLINE, HostStatus.STALE]) == HostStatus.STALE
    assert virtual_status(own=None, neighbours=[HostStatus.OFFLINE]) == HostStatus.OFFLINE


def test_a_virtual_node_with_nothing_reporting_around_it_is_unknown():
    assert virtual_status(own=None, neighbours=[]) == HostStatus.UNKNOWN
    assert virtual_status(own=None, neighbours=[HostStatus.UNKNOWN]) == HostStatus.UNKNOWN


def test_a_polled_virtual_node_counts_its_own_reports():
    assert virtual_status(own=HostStatus.ONLINE, neighbours=[HostStatus.OFFLINE]) == HostStatus.ONLINE
