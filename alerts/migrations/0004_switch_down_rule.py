"""A shipped rule for switches, so a failed switch is one incident that its hosts' alerts hang under."""

from django.db import migrations

SWITCH_DOWN = {
    "name": "SwitchDown",
    "kind": "status",
    "status": "offline",
    "severity": "critical",
    "scope": "virtual",
    "annotations": {"summary": "{hostname} is down: nothing behind it reports; the hosts it cuts off are listed."},
}


def switch_down_create(apps, schema_editor):
    Rule = apps.get_model("alerts", "Rule")
    Rule.objects.get_or_create(name=SWITCH_DOWN["name"], defaults=SWITCH_DOWN)


class Migration(migrations.Migration):
    dependencies = [("alerts", "0003_alert_cause")]

    operations = [migrations.RunPython(switch_down_create, migrations.RunPython.noop)]
