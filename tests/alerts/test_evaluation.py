"""The evaluator: alerts open, fire and resolve from the latest values and the clock, each transition once."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from alerts.evaluation import alerts_evaluate
from alerts.models import Alert, AlertTransition, Rule
from hosts.models import Host, Link
from tests.conftest import ingest_at, sample_dict

pytestmark = pytest.mark.django_db

CPU = {"name": "Cpu", "field": "cpu_load", "operator": ">", "threshold": 90.0, "clear_threshold": 80.0}


def _transitions(hostname: str, rule: str) -> list[tuple[str, str]]:
    return list(
        AlertTransition.objects.filter(alert__host__hostname=hostname, alert__rule__name=rule)
        .order_by("at", "id")
        .values_list("from_state", "to_state")
    )


def test_a_host_that_goes_offline_fires_host_offline_and_a_fresh_sample_resolves_it(clock, settings):
    Rule.objects.exclude(name="HostOffline").update(enabled=False)
    ingest_at([sample_dict("web-01", at=clock.now)], received_at=clock.now)
    assert clock.evaluate() == []
    changes = clock.evaluate(settings.TWIN_OFFLINE_AFTER_SECONDS + 0.5)
    assert [(c.rule, c.hostname, c.to_state) for c in changes] == [
        ("HostOffline", "web-01", "pending"),
        ("HostOffline", "web-01", "firing"),
    ]
    assert clock.evaluate(1) == []  # still offline: nothing new
    alert = Alert.objects.get(rule__name="HostOffline")
    assert alert.state == "firing" and alert.values["status"] == "offline"
    ingest_at([sample_dict("web-01", at=clock.now)], received_at=clock.now)
    assert [c.to_state for c in clock.evaluate(0.5)] == ["resolved"]
    alert.refresh_from_db()
    assert alert.state == "resolved" and alert.ends_at == clock.now
    assert _transitions("web-01", "HostOffline") == [("", "pending"), ("pending", "firing"), ("firing", "resolved")]


def test_the_virtual_core_switch_is_not_among_host_offline_hosts(clock, settings):
    Rule.objects.exclude(name="HostOffline").update(enabled=False)
    ingest_at([sample_dict("web-01", at=clock.now)], received_at=clock.now)
    clock.evaluate(settings.TWIN_OFFLINE_AFTER_SECONDS + 1)
    assert Host.objects.filter(is_virtual=True).exists()
    assert list(Alert.objects.values_list("host__hostname", flat=True)) == ["web-01"]


def test_a_rule_with_for_stays_pending_until_its_time_is_over(clock, only_rules):
    only_rules({**CPU, "for_seconds": 30.0})
    ingest_at([sample_dict("web-01", at=clock.now, cpu_load=95.0)], received_at=clock.now)
    assert [c.to_state for c in clock.evaluate()] == ["pending"]
    assert clock.evaluate(29) == []
    assert [c.to_state for c in clock.evaluate(1)] == ["firing"]


def test_a_pending_alert_whose_condition_ends_resolves_without_firing(clock, only_rules):
    only_rules({**CPU, "for_seconds": 30.0})
    ingest_at([sample_dict("web-01", at=clock.now, cpu_load=95.0)], received_at=clock.now)
    clock.evaluate()
    ingest_at([sample_dict("web-01", at=clock.now + timedelta(seconds=5), cpu_load=10.0)], received_at=clock.now)
    assert [c.to_state for c in clock.evaluate(5)] == ["resolved"]
    assert _transitions("web-01", "Cpu") == [("", "pending"), ("pending", "resolved")]


def test_hysteresis_keeps_an_alert_firing_between_the_clear_threshold_and_the_threshold(clock, only_rules):
    only_rules(CPU)
    t = clock.now
    ingest_at([sample_dict("web-01", at=t, cpu_load=95.0)], received_at=t)
    assert [c.to_state for c in clock.evaluate()] == ["pending", "firing"]
    ingest_at([sample_dict("web-01", at=t + timedelta(seconds=1), cpu_load=85.0)], received_at=t)
    assert clock.evaluate(1) == []  # below 90 but above 80: still firing
    ingest_at([sample_dict("web-01", at=t + timedelta(seconds=2), cpu_load=80.0)], received_at=t)
    assert [c.to_state for c in clock.evaluate(1)] == ["resolved"]
    ingest_at([sample_dict("web-01", at=t + timedelta(seconds=3), cpu_load=85.0)], received_at=t)
    assert clock.evaluate(1) == []  # 85 does not open a new one: the threshold is 90


def test_a_metric_of_an_offline_host_is_not_current_and_resolves_its_alert(clock, only_rules, settings):
    only_rules(CPU)
    ingest_at([sample_dict("web-01", at=clock.now, cpu_load=95.0)], received_at=clock.now)
    clock.evaluate()
    assert [c.to_state for c in clock.evaluate(settings.TWIN_OFFLINE_AFTER_SECONDS + 1)] == ["resolved"]


def test_a_rack_scoped_rule_watches_only_that_racks_hosts(clock, only_rules):
    ingest_at(
        [sample_dict("a-01", rack="A", cpu_load=99.0), sample_dict("b-01", rack="B", cpu_load=99.0)],
        received_at=clock.now,
    )
    only_rules({**CPU, "scope": "racks", "racks": ["A"]})
    assert {c.hostname for c in clock.evaluate()} == {"a-01"}


def test_an_absent_rule_fires_when_a_host_sends_nothing_for_its_seconds(clock, only_rules):
    only_rules({"name": "Silent", "kind": "absent", "threshold": 20.0})
    ingest_at([sample_dict("web-01", at=clock.now)], received_at=clock.now)
    assert clock.evaluate(20) == []
    changes = clock.evaluate(0.5)
    assert [c.to_state for c in changes] == ["pending", "firing"]
    assert Alert.objects.get().values["silentSeconds"] == 20.5


def test_link_utilization_over_the_threshold_fires_on_the_hosts_uplink(clock, only_rules):
    only_rules({"name": "Link", "field": "link_utilization_percent", "operator": ">", "threshold": 90.0})
    t = clock.now
    ingest_at([sample_dict("web-01", at=t - timedelta(seconds=1), net_bytes_tx=0, net_bytes_rx=0)], received_at=t)
    Link.objects.filter(target__hostname="web-01").update(capacity_gbps=1.0)
    Link.objects.filter(source__hostname="web-01").update(capacity_gbps=1.0)
    # 0.12 GB each way in one second: 1.92 Gbit/s on a 1 Gbit/s link, shown as 100 %.
    ingest_at([sample_dict("web-01", at=t, net_bytes_tx=120_000_000, net_bytes_rx=120_000_000)], received_at=t)
    changes = clock.evaluate()
    assert {c.hostname for c in changes} == {"web-01"}
    assert Alert.objects.get().values == {"value": 100.0, "threshold": 90.0}


def test_disabling_a_rule_resolves_its_open_alerts(clock, only_rules):
    (rule,) = only_rules(CPU)
    ingest_at([sample_dict("web-01", at=clock.now, cpu_load=95.0)], received_at=clock.now)
    clock.evaluate()
    Rule.objects.filter(pk=rule.pk).update(enabled=False)
    assert [c.to_state for c in clock.evaluate(1)] == ["resolved"]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_evaluators_at_once_record_each_transition_once(clock, only_rules):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite runs one at a time)")
    only_rules(CPU)
    ingest_at([sample_dict(f"web-{i:02}", at=clock.now, cpu_load=95.0) for i in range(50)], received_at=clock.now)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            alerts_evaluate(now=clock.now)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Alert.objects.count() == 50
    assert AlertTransition.objects.count() == 100  # pending and firing, once each


def test_link_utilization_reads_each_links_own_interface_as_the_twin_state_shows_it(
    clock, only_rules, post_batch, open_twin
):
    from hosts.topology import topology_import
    from tests.fabric.fixtures import as_file, hosts_create, leaf_spine
    from tests.twin.test_snapshot_interfaces import GB, _two_readings
    from twin.snapshot import snapshot_build

    only_rules({"name": "Link", "field": "link_utilization_percent", "operator": ">", "threshold": 70.0})
    hosts_create()
    topology_import(body=as_file(leaf_spine(dual_homed="h-1a")))
    # eth0 (to leaf-1): 10 GB in 10 s = 8 Gbit/s of 10; eth1 (to leaf-2): 1 Gbit/s. The host's total is 9.
    _two_readings(
        post_batch, "h-1a", {"eth0": (0, 0), "eth1": (0, 0)}, {"eth0": (5 * GB, 5 * GB), "eth1": (GB, GB // 4)}
    )
    clock.now = timezone.now()
    clock.evaluate()
    (alert,) = Alert.objects.all()
    served = max(link["utilization"] for link in snapshot_build(now=clock.now)["links"] if "h-1a" in link["id"])
    assert alert.host.hostname == "h-1a"
    assert alert.values["value"] == pytest.approx(served * 100) == pytest.approx(80.0, rel=0.02)
