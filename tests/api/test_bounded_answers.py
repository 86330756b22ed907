"""A file built to make answers huge gets short ones: at most 500 columns are read, and
every list of problems a page, a command or an answer holds stops at the first 100 and
counts the rest (the preview's file with the problems beside each row holds them all)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from customers.formats import ERR_TOO_MANY_COLUMNS, MAX_COLUMNS
from customers.models import StagedCustomer, StagingUpload
from customers.resources.results import PROBLEMS_SHOWN
from customers.services import upload_check, upload_create
from tests.customers.importing import preview

pytestmark = pytest.mark.django_db

MILLION = 1_000_000


def too_wide(columns: int, *, repeated: bool = False) -> bytes:
    header = ",".join("x" if repeated else f"c{i}" for i in range(columns))
    return (header + "\n" + "1," * (columns - 1) + "1\n").encode()


def bad_rows(count: int) -> bytes:
    """Customers whose every row has a bad email (a problem each)."""
    rows = "".join(f"C-{i:05d},Ann,not-an-email-{i},2023-11-07\n" for i in range(count))
    return b"id,name,email,registration_date\n" + rows.encode()


def refusal(columns: int) -> str:
    return str(ERR_TOO_MANY_COLUMNS % {"count": f"{columns:,}", "max": MAX_COLUMNS})


@pytest.mark.parametrize("repeated", [False, True], ids=["distinct names", "one name repeated"])
def test_a_million_columns_get_a_short_refusal_from_the_api(
    as_user, importer, batch, upload, repeated
):
    response = upload(
        as_user(importer), batch.pk, "customers", "wide.csv", too_wide(MILLION, repeated=repeated)
    )

    assert response.status_code == 400
    assert len(response.content) < 2_000
    assert response.json()["fields"]["file"] == [f"wide.csv: {refusal(MILLION)}"]
    assert not StagedCustomer.objects.exists()


def test_one_column_too_many_is_refused_in_the_preview_and_by_the_command(
    client, importer, batch, tmp_path
):
    client.force_login(importer)
    page = preview(client, batch, "customers", "wide.csv", too_wide(MAX_COLUMNS + 1))
    assert refusal(MAX_COLUMNS + 1) in page.content.decode()
    assert len(page.content) < 60_000

    path = tmp_path / "wide.csv"
    path.write_bytes(too_wide(MAX_COLUMNS + 1))
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("stage_file", batch.name, "customers", str(path), stderr=err,
                     stdout=StringIO(), user=importer.username)  # fmt: skip
    assert refusal(MAX_COLUMNS + 1) in err.getvalue()
    assert not StagedCustomer.objects.exists()


def test_the_api_lists_the_first_100_problems_and_counts_them_all(as_user, importer, batch, upload):
    response = upload(as_user(importer), batch.pk, "customers", "bad.csv", bad_rows(1000))

    body = response.json()
    assert response.status_code == 400
    assert body["problem_count"] == 1000
    assert len(body["problems"]) == PROBLEMS_SHOWN
    assert [p["row"] for p in body["problems"][:2]] == [2, 3]
    lines = body["fields"]["file"]
    assert len(lines) == PROBLEMS_SHOWN + 1
    assert lines[-1] == "… and 900 more problems, not listed here."


def test_the_preview_lists_the_first_100_problems_and_offers_the_file_with_all(
    client, importer, batch
):
    client.force_login(importer)
    page = preview(client, batch, "customers", "bad.csv", bad_rows(1000)).content.decode()

    assert page.count("column “email”") == PROBLEMS_SHOWN
    assert "… and 900 more problems, not listed here." in page
    assert "The file with its problems beside each row" in page


def test_the_command_prints_the_first_100_problems(batch, importer, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(bad_rows(1000))
    err = StringIO()
    with pytest.raises(CommandError, match="1000 problem"):
        call_command("stage_file", batch.name, "customers", str(path), stderr=err,
                     stdout=StringIO(), user=importer.username)  # fmt: skip
    lines = err.getvalue().splitlines()
    assert sum("not-an-email" in line for line in lines) == PROBLEMS_SHOWN
    assert "… and 900 more problems, not listed here." in lines


def test_a_background_upload_keeps_the_first_100_problems_and_their_count(client, importer, batch):
    upload = upload_create(
        batch=batch, kind="customers", file_name="bad.csv", content=bad_rows(1000), user=importer
    )
    upload_check(upload_id=upload.pk)

    upload = StagingUpload.objects.get(pk=upload.pk)
    assert (upload.status, upload.problem_count, len(upload.problems)) == (
        StagingUpload.Status.READY,
        1000,
        PROBLEMS_SHOWN,
    )
