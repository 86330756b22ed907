"""Deliveries for the customers sent before deliveries were recorded, so that a batch
staged later skips them as it skips any customer already sent."""

from urllib.parse import urlsplit

from django.conf import settings
from django.db import migrations
from django.utils import timezone


def _account() -> str:
    if settings.MASIVO_ACCOUNT:
        return settings.MASIVO_ACCOUNT[:200]
    parts = urlsplit(str(settings.MASIVO_BASE_URL).strip())
    host = (parts.hostname or "").lower()
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme.lower()}://{host}{port}{parts.path.rstrip('/')}"[:200]


def deliveries_of_sent(apps, schema_editor):
    StagedCustomer = apps.get_model("customers", "StagedCustomer")
    MigrationJob = apps.get_model("migrations_jobs", "MigrationJob")
    Delivery = apps.get_model("migrations_jobs", "Delivery")
    account = _account()
    now = timezone.now()
    jobs = set(MigrationJob.objects.values_list("pk", flat=True))
    latest = {}
    sent = (
        StagedCustomer.objects.filter(outcome="sent", outcome_job_id__isnull=False)
        .order_by("outcome_at", "pk")
        .values_list("pk", "legacy_id", "outcome_job_id", "outcome_chunk_id", "outcome_at")
        .iterator(chunk_size=10_000)
    )
    for pk, legacy_id, job_id, chunk_id, at in sent:
        if job_id in jobs:
            latest[legacy_id] = (pk, job_id, chunk_id, at)
    rows = [
        Delivery(
            account=account,
            legacy_id=legacy_id,
            customer_id=pk,
            job_id=job_id,
            chunk_id=None,
            status="sent",
            booked_at=at or now,
            sent_at=at or now,
            times_sent=1,
        )
        for legacy_id, (pk, job_id, _chunk_id, at) in latest.items()
    ]
    Delivery.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)


class Migration(migrations.Migration):
    dependencies = [
        ("migrations_jobs", "0005_deliveries_leases_send_again"),
    ]

    operations = [
        migrations.RunPython(deliveries_of_sent, migrations.RunPython.noop),
    ]
