"""The rules an installation starts with; operators edit or disable them like any other."""

from django.db import migrations

DEFAULT_RULES = [
    {
        "name": "HostOffline",
        "kind": "status",
        "status": "offline",
        "severity": "critical",
        "scope": "all",
        "annotations": {"summary": "{hostname} is offline: no sample for longer than the offline threshold."},
    },
    {
        "name": "HighCpu",
        "kind": "metric",
        "field": "cpu_load",
        "operator": ">",
        "threshold": 90.0,
        "clear_threshold": 80.0,
        "for_seconds": 120.0,
        "severity": "warning",
        "annotations": {"summary": "{hostname}'s CPU is above 90 % busy."},
    },
    {
        "name": "MemoryNearlyFull",
        "kind": "metric",
        "field": "memory_used_percent",
        "operator": ">",
        "threshold": 95.0,
        "clear_threshold": 90.0,
        "for_seconds": 120.0,
        "severity": "warning",
        "annotations": {"summary": "{hostname}'s memory is more than 95 % used."},
    },
    {
        "name": "LinkUtilizationHigh",
        "kind": "metric",
        "field": "link_utilization_percent",
        "operator": ">",
        "threshold": 90.0,
        "clear_threshold": 80.0,
        "for_seconds": 60.0,
        "severity": "warning",
        "annotations": {"summary": "{hostname}'s uplink carries more than 90 % of its capacity."},
    },
    {
        "name": "AgentSilent",
        "kind": "absent",
        "threshold": 60.0,
        "severity": "warning",
        "annotations": {"summary": "{hostname}'s agent has sent nothing for a minute."},
    },
]


def default_rules_create(apps, schema_editor):
    Rule = apps.get_model("alerts", "Rule")
    for rule in DEFAULT_RULES:
        Rule.objects.get_or_create(name=rule["name"], defaults=rule)


class Migration(migrations.Migration):
    dependencies = [("alerts", "0001_rules_alerts_delivery")]

    operations = [migrations.RunPython(default_rules_create, migrations.RunPython.noop)]
