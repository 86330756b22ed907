"""Whether a failed chunk was refused for good (retrying cannot help), recorded where it
fails; chunks that failed before it was recorded are judged by their last answer."""

from django.db import migrations, models

# The outcomes whose failure is final for the body (``outcomes.answer_action`` "fail").
FINAL_OUTCOMES = ("permanent", "too_large", "auth_error")


def mark_permanent(apps, schema_editor):
    JobChunk = apps.get_model("migrations_jobs", "JobChunk")
    JobChunk.objects.filter(status="failed", last_outcome__in=FINAL_OUTCOMES).exclude(
        last_error__startswith="Gave up after"
    ).update(is_permanent=True)


class Migration(migrations.Migration):
    dependencies = [
        ("migrations_jobs", "0006_deliveries_of_sent_customers"),
    ]

    operations = [
        migrations.AddField(
            model_name="jobchunk",
            name="is_permanent",
            field=models.BooleanField(
                default=False,
                help_text=(
                    "Masivo refused this chunk in a way that sending it again cannot change; "
                    "retrying failed chunks leaves it failed."
                ),
                verbose_name="refused for good",
            ),
        ),
        migrations.RunPython(mark_permanent, migrations.RunPython.noop),
    ]
