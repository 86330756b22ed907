from django.db import migrations

from customers import versioning


class Migration(migrations.Migration):
    """The UPDATE triggers of the staged tables compare the watched columns one by one,
    each table with its own function, instead of each row's whole JSON."""

    dependencies = [
        ("customers", "0017_batch_content_version"),
    ]

    operations = [
        migrations.RunPython(versioning.install, migrations.RunPython.noop),
    ]
