import pytest
from django.urls import reverse

from config.celery import app as celery_app
from customers.models import StagedCustomer, StagingUpload
from tests.customers.importing import preview, to_csv

pytestmark = pytest.mark.django_db


@pytest.fixture
def eager_tasks():
    # Services send tasks by name; find them as a worker does, then run them in-process.
    celery_app.loader.import_default_modules()
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture
def small_threshold(settings):
    settings.MIGRATION_BACKGROUND_IMPORT_ROWS = 5


def _rows(n: int, bad_row: int | None = None) -> bytes:
    rows = [["id", "name", "email", "registration_date"]]
    rows += [[f"c{i:03d}", f"Name {i}", f"c{i:03d}@example.com", "2023-01-01"] for i in range(n)]
    if bad_row is not None:
        rows[bad_row][3] = "soon"
    return to_csv(rows)


def test_big_file_is_checked_by_a_worker_then_staged_after_confirmation(
    client, importer, batch, small_threshold, eager_tasks, django_capture_on_commit_callbacks
):
    client.force_login(importer)
    with django_capture_on_commit_callbacks(execute=True):
        response = preview(client, batch, "customers", "big.csv", _rows(40))

    change_url = reverse("admin:customers_stagingbatch_change", args=[batch.pk])
    assert response.status_code == 302
    assert response.url == change_url + "#uploads"
    upload = StagingUpload.objects.get()
    assert upload.status == StagingUpload.Status.READY
    assert upload.row_count == 40
    assert not StagedCustomer.objects.exists()  # checked, not staged
    progress = client.get(
        reverse("admin:customers_stagingbatch_uploads_progress", args=[batch.pk])
    ).json()
    assert progress["active"] is False
    assert progress["uploads"][0]["status"] == "ready"

    upload_url = reverse("admin:customers_stagingbatch_upload", args=[batch.pk, upload.pk])
    assert "Confirm import" in client.get(upload_url).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(upload_url)

    upload.refresh_from_db()
    assert upload.status == StagingUpload.Status.STAGED
    assert upload.staged == {"customers": 40}
    assert StagedCustomer.objects.filter(batch=batch).count() == 40
    batch.refresh_from_db()
    assert batch.customer_count == 40


def test_big_file_with_a_bad_row_is_refused_with_its_problems(
    client, importer, batch, small_threshold, eager_tasks, django_capture_on_commit_callbacks
):
    client.force_login(importer)
    with django_capture_on_commit_callbacks(execute=True):
        preview(client, batch, "customers", "big.csv", _rows(40, bad_row=17))

    upload = StagingUpload.objects.get()
    assert upload.status == StagingUpload.Status.REFUSED
    assert upload.problem_lines() == [
        "big.csv: row 18 (id “c016”), column “registration_date”: “soon” is not a date-time "
        "such as 2023-11-07T05:31:56Z or 2023-11-07T00:31:56-05:00, nor a date such as "
        "2023-11-07."
    ]
    page = client.get(reverse("admin:customers_stagingbatch_upload", args=[batch.pk, upload.pk]))
    assert "row 18" in page.content.decode()
    assert "Confirm import" not in page.content.decode()
    assert (
        client.post(
            reverse("admin:customers_stagingbatch_upload", args=[batch.pk, upload.pk]), follow=True
        ).status_code
        == 200
    )
    assert not StagedCustomer.objects.exists()


def test_small_file_still_gets_the_immediate_preview(client, importer, batch, small_threshold):
    client.force_login(importer)
    response = preview(client, batch, "customers", "small.csv", _rows(3))
    assert response.status_code == 200
    assert response.context["result"].staged == {"customers": 3}
    assert not StagingUpload.objects.exists()
