"""Drive the admin's import and confirm pages the way an operator's browser does."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from customers.formats import STAGING_FORMATS
from customers.resources import STAGING_RESOURCES

IMPORT_URL = "admin:customers_stagingbatch_import"
CONFIRM_URL = "admin:customers_stagingbatch_process_import"
KIND_INDEX = {resource.kind: i for i, resource in enumerate(STAGING_RESOURCES)}
FORMAT_INDEX = {fmt().get_extension(): i for i, fmt in enumerate(STAGING_FORMATS)}


def preview(client, batch, kind: str, name: str, content: bytes):
    """POST the import form; answer the preview page."""
    extension = name.rsplit(".", 1)[-1].lower()
    return client.post(
        reverse(IMPORT_URL),
        {
            "batch": batch.pk,
            "resource": KIND_INDEX[kind],
            "format": FORMAT_INDEX.get(extension, FORMAT_INDEX["csv"]),
            "import_file": SimpleUploadedFile(name, content),
        },
    )


def confirm(client, preview_response, **choices):
    """POST the confirm form as the preview filled it, with ``choices`` (``on_problems``)."""
    form = preview_response.context["confirm_form"]
    # As the page renders them (a mapping as its JSON text).
    data = {name: form[name].value() for name in form.fields if form.initial.get(name) is not None}
    return client.post(reverse(CONFIRM_URL), {**data, **choices})


def stage(client, batch, kind: str, name: str, content: bytes):
    """Preview then confirm; fail loudly with the page's problems if the preview refused."""
    response = preview(client, batch, kind, name, content)
    assert response.status_code == 200, response.content[:2000]
    if response.context.get("confirm_form") is None:
        result = response.context.get("result")
        form = response.context.get("form")
        detail = result.messages() if result else (form.errors if form else "")
        raise AssertionError(f"preview refused {name}: {detail}")
    return confirm(client, response)


def stage_sample(client, batch, samples: Path, kind: str):
    name = f"{kind}.json" if kind == "nested" else f"{kind}.csv"
    return stage(client, batch, kind, name, (samples / name).read_bytes())


def csv_rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def to_csv(rows: list[list[str]], delimiter: str = ",") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode("utf-8")


def to_xlsx(rows: list[list]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def to_json_rows(rows: list[list[str]]) -> bytes:
    headers, *body = rows
    return json.dumps([dict(zip(headers, r, strict=True)) for r in body]).encode()
