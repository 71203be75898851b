"""The virtual core switch every new host gets an uplink to."""

from django.db import migrations


def core_switch_create(apps, schema_editor):
    from hosts.services import core_switch_ensure

    core_switch_ensure(host_model=apps.get_model("hosts", "Host"))


class Migration(migrations.Migration):
    dependencies = [("hosts", "0001_initial")]

    operations = [migrations.RunPython(core_switch_create, migrations.RunPython.noop)]
