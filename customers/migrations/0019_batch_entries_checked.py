from django.db import migrations, models

from customers import versioning


class Migration(migrations.Migration):
    """The version at which a batch's entries were checked against the contract; the
    version triggers count it among the recorded versions. The triggers are dropped while
    the batch table changes: SQLite rebuilds the table, which a trigger naming it would
    stop."""

    dependencies = [
        ("customers", "0018_version_update_by_column"),
    ]

    operations = [
        migrations.RunPython(versioning.uninstall, versioning.install),
        migrations.AddField(
            model_name="stagingbatch",
            name="entries_checked_contract",
            field=models.CharField(
                blank=True,
                editable=False,
                max_length=64,
                verbose_name="contract the entries were checked with",
            ),
        ),
        migrations.AddField(
            model_name="stagingbatch",
            name="entries_checked_version",
            field=models.PositiveBigIntegerField(
                blank=True,
                editable=False,
                null=True,
                verbose_name="version whose entries were checked",
            ),
        ),
        migrations.RunPython(versioning.install, versioning.uninstall),
    ]
