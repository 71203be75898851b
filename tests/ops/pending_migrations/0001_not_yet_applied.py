"""A migration no database has applied: points ``ops`` here to play a release ahead of its database."""

from django.db import migrations


class Migration(migrations.Migration):
    operations: list = []
