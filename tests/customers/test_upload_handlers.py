"""A file over ``MIGRATION_UPLOAD_MAX_BYTES`` is refused while the request's body arrives:
Django's handlers are given nothing past the limit to keep (memory or a temporary file),
and the operator reads the usual message, with the file's whole size."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import (
    MemoryFileUploadHandler,
    TemporaryFileUploadHandler,
)
from django.urls import reverse
from rest_framework.test import APIClient

from console.errors import InvalidInput
from customers.models import StagedCustomer
from customers.upload_handlers import OversizedUpload
from tests.customers.importing import preview

LIMIT = 256 * 1024


@pytest.fixture
def kept(monkeypatch) -> list[int]:
    """The sizes of the blocks Django's own handlers kept (in memory or on disk)."""
    blocks: list[int] = []
    for handler_class in (MemoryFileUploadHandler, TemporaryFileUploadHandler):
        original = handler_class.receive_data_chunk

        def spy(self, raw_data, start, original=original):
            passed_on = original(self, raw_data, start)
            if passed_on is None:
                blocks.append(len(raw_data))
            return passed_on

        monkeypatch.setattr(handler_class, "receive_data_chunk", spy)
    return blocks


@pytest.fixture
def small_limit(settings):
    settings.MIGRATION_UPLOAD_MAX_BYTES = LIMIT
    # Past this, Django keeps an upload in a temporary file instead of in memory.
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024


def api_upload(user, batch, name: str, content: bytes):
    client = APIClient()
    client.force_authenticate(user)
    return client.post(
        reverse("api:batch-files", args=[batch.pk]),
        {"kind": "customers", "file": SimpleUploadedFile(name, content)},
        format="multipart",
    )


def customers_csv(rows: int) -> bytes:
    lines = [b"id,name,email,registration_date"]
    lines += [
        b"legacy-%07d,Someone,someone%d@example.com,2023-11-07T05:31:56Z" % (n, n)
        for n in range(rows)
    ]
    return b"\n".join(lines) + b"\n"


def test_a_file_over_the_limit_is_not_kept_past_it_and_the_api_says_why(
    small_limit, kept, importer, batch
):
    content = customers_csv(40_000)  # about 2.6 MB

    answer = api_upload(importer, batch, "big.csv", content)

    assert answer.status_code == 400, answer.content[:500]
    size = f"{len(content) / 1024 / 1024:.1f}\xa0MB"
    assert answer.json()["fields"]["file"] == [
        f"The file is {size}; files up to 256.0\xa0KB can be staged."
    ]
    assert sum(kept) <= LIMIT
    assert not StagedCustomer.objects.filter(batch=batch).exists()


def test_a_file_over_the_limit_is_not_kept_past_it_and_the_admin_says_why(
    small_limit, kept, client, importer, batch
):
    content = customers_csv(40_000)
    client.force_login(importer)

    page = preview(client, batch, "customers", "big.csv", content)

    assert page.status_code == 200
    size = f"{len(content) / 1024 / 1024:.1f}\xa0MB"
    assert page.context["form"].errors["import_file"] == [
        f"The file is {size}; files up to 256.0\xa0KB can be staged."
    ]
    assert page.context.get("confirm_form") is None
    assert sum(kept) <= LIMIT
    assert not StagedCustomer.objects.filter(batch=batch).exists()


def test_a_file_within_the_limit_is_kept_whole_and_staged(small_limit, kept, importer, batch):
    content = customers_csv(3_000)  # about 190 kB

    answer = api_upload(importer, batch, "fits.csv", content)

    assert answer.status_code == 201, answer.content[:500]
    assert sum(kept) == len(content)
    assert StagedCustomer.objects.filter(batch=batch).count() == 3_000


def test_a_file_refused_while_it_arrived_cannot_be_read():
    refusal = InvalidInput("The file is 3.0 GB; files up to 200.0 MB can be staged.")
    file = OversizedUpload(
        name="big.csv", size=3 * 1024**3, content_type="text/csv", charset=None, refusal=refusal
    )

    with pytest.raises(InvalidInput, match="files up to 200.0 MB can be staged"):
        file.read()
    assert file.size == 3 * 1024**3
