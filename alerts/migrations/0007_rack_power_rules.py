"""Shipped rules on a rack's power: one alert per rack near its capacity, or one that a feed's failure would trip."""

from django.db import migrations

RACK_POWER_RULES = [
    {
        "name": "RackPowerHigh",
        "kind": "metric",
        "field": "rack_power_percent",
        "operator": ">",
        "threshold": 90.0,
        "clear_threshold": 85.0,
        "for_seconds": 300.0,
        "severity": "warning",
        "scope": "all",
        "annotations": {"summary": "Rack {rack} draws {value} % of its capacity with both feeds (above 90 %)."},
    },
    {
        "name": "RackABMarginNegative",
        "kind": "metric",
        "field": "rack_ab_margin_watts",
        "operator": "<",
        "threshold": 0.0,
        "severity": "critical",
        "scope": "all",
        "annotations": {
            "summary": "Rack {rack} would trip if a feed failed: the surviving feed's margin is {value} W."
        },
    },
]


def rack_power_rules_create(apps, schema_editor):
    Rule = apps.get_model("alerts", "Rule")
    for rule in RACK_POWER_RULES:
        Rule.objects.get_or_create(name=rule["name"], defaults=rule)


class Migration(migrations.Migration):
    dependencies = [("alerts", "0006_alert_rack")]

    operations = [migrations.RunPython(rack_power_rules_create, migrations.RunPython.noop)]
