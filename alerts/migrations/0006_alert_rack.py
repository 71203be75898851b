"""Rack alerts: an alert names a host or a rack (exactly one), one open alert per rule and rack."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0005_evaluation_cost"),
        ("hosts", "0005_fabric_interfaces_roles"),
    ]

    operations = [
        migrations.AddField(
            model_name="alert",
            name="rack",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="alerts",
                to="hosts.rack",
            ),
        ),
        migrations.AlterField(
            model_name="alert",
            name="host",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="alerts",
                to="hosts.host",
            ),
        ),
        migrations.AddConstraint(
            model_name="alert",
            constraint=models.UniqueConstraint(
                condition=models.Q(("state__in", ("pending", "firing"))),
                fields=("rule", "rack"),
                name="alerts_one_open_per_rule_rack",
            ),
        ),
        migrations.AddConstraint(
            model_name="alert",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("host__isnull", False), ("rack__isnull", True)),
                    models.Q(("host__isnull", True), ("rack__isnull", False)),
                    _connector="OR",
                ),
                name="alerts_alert_host_or_rack",
            ),
        ),
    ]
