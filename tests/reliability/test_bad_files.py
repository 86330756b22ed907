"""What real legacy exports throw at the importer, through the admin's import pages and
through the API (``POST /api/batches/{id}/files/``).

Every file of the corpus below is generated here. Each one either stages correctly, with
its values checked, or is refused with a message that names the problem (and the row and
column where there is one). Never a server error, never part of a file staged, never a
lost leading zero, never markup from a file running in a page.
"""

from __future__ import annotations

import codecs
import io
import json
import random
import uuid
import zipfile
from dataclasses import dataclass, field
from decimal import Decimal

import openpyxl
import pytest
from django.urls import reverse
from django.utils.html import escape

from customers.formats import (
    ERR_EMPTY,
    ERR_JSON_TOO_DEEP,
    ERR_JSON_UNREADABLE,
    ERR_NUL_BYTES,
    ERR_XLSX_ENTITIES,
    ERR_XLSX_NOT_WORKBOOK,
    ERR_XLSX_NOT_ZIP,
)
from customers.models import StagedBalance, StagedCustomer
from customers.resources.base import ERR_MISSING_COLUMNS, ERR_NO_ROWS
from tests.customers.importing import confirm, preview, to_xlsx
from tests.factories import BatchFactory, CustomerFactory

pytestmark = pytest.mark.django_db

REWARD = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
# A customer staged in every batch before the file, for files of balances.
OWNER = "000777"
SCRIPT = "<script>alert('xss')</script>"
# A file name keeps no "/" (the upload keeps only its last part), so its markup has none.
FILE_MARKUP = "<img src=x onerror=alert('file')>"


@dataclass(frozen=True)
class Sample:
    """One file of the corpus and what must become of it."""

    label: str
    name: str
    content: bytes
    kind: str = "customers"
    # Staged: the values to find, by legacy id (customers) or by customer (balances).
    staged: dict[str, dict] = field(default_factory=dict)
    # Refused: words the message must contain, and the (row, column) it must name.
    refused: str = ""
    where: tuple[int, str] | None = None
    # Markup in the file name (and, if staged, in its cells) that pages must escape.
    has_markup: bool = False
    # Headers that are not the kind's own: the admin asks for a mapping, scripts are refused.
    asks_mapping: bool = False

    @property
    def is_refused(self) -> bool:
        return bool(self.refused)


def csv_bytes(text: str, encoding: str = "utf-8") -> bytes:
    return text.encode(encoding)


def xlsx_with_zero_padded_ids() -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["id", "name"])
    sheet.append(["000132", "Text cell"])
    sheet.append([133, "Number shown as 000133"])
    sheet["A3"].number_format = "000000"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def xlsx_rewritten(part: str, rewrite) -> bytes:
    """A workbook whose ``part`` (a member of the zip) is replaced by ``rewrite(text)``."""
    source = zipfile.ZipFile(io.BytesIO(to_xlsx([["id", "name"], ["000160", "PLACEHOLDER"]])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for member in source.namelist():
            content = source.read(member)
            if member == part:
                content = rewrite(content.decode()).encode()
            archive.writestr(member, content)
    return out.getvalue()


def billion_laughs(text: str) -> str:
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
    ]
    doctype = f"<!DOCTYPE worksheet [{''.join(entities)}]>"
    return doctype + text.replace("PLACEHOLDER", "&lol9;")


def external_entity(text: str) -> str:
    doctype = '<!DOCTYPE worksheet [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    return doctype + text.replace("PLACEHOLDER", "&xxe;")


def zip_bomb(text: str) -> str:
    # Eight megabytes of blanks compress to a few kilobytes: a ratio no real sheet has.
    return text.replace("</worksheet>", " " * (8 * 1024 * 1024) + "</worksheet>")


def zip_of(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return out.getvalue()


def binary_without_nul() -> bytes:
    data = bytearray(random.Random(7).randbytes(4096))  # noqa: S311 - a fixed corpus
    return bytes(b or 1 for b in data)


CORPUS = [
    # --- staged, values checked ----------------------------------------------------------
    Sample(
        "utf-8 with BOM and padded headers",
        "bom.csv",
        csv_bytes(
            "\ufeff  ID , Name ,EMAIL  , Registration_Date \r\n"
            "000123,José Núñez 😀,jose@example.com,2023-11-07\r\n"
        ),
        staged={
            "000123": {
                "name": "José Núñez 😀",
                "email": "jose@example.com",
                "registration_date": "2023-11-07T00:00:00+00:00",
            }
        },
    ),
    Sample(
        "semicolon delimiter",
        "semicolon.csv",
        csv_bytes("id;name;email\n000124;Smith, John;john@example.com\n"),
        staged={"000124": {"name": "Smith, John", "email": "john@example.com"}},
    ),
    Sample(
        "windows-1252",
        "cp1252.csv",
        csv_bytes("id,name\r\n000125,Peña – “Ñandú” €\r\n", "cp1252"),
        staged={"000125": {"name": "Peña – “Ñandú” €"}},
    ),
    Sample(
        "latin-1",
        "latin1.csv",
        csv_bytes("id,name\n000126,Gómez Ñúñez ÿ\n", "latin-1"),
        staged={"000126": {"name": "Gómez Ñúñez ÿ"}},
    ),
    Sample(
        "utf-16 tab-separated (Excel's Unicode text)",
        "unicode.txt",
        codecs.BOM_UTF16_LE + "id\tname\r\n000131\tZoë Ærø\r\n".encode("utf-16-le"),
        staged={"000131": {"name": "Zoë Ærø"}},
    ),
    Sample(
        "mixed line endings",
        "endings.csv",
        csv_bytes("id,name\r\n000127,Ann\n000128,Bob\r000129,Cy\r\n"),
        staged={"000127": {"name": "Ann"}, "000128": {"name": "Bob"}, "000129": {"name": "Cy"}},
    ),
    Sample(
        "quoted newline",
        "quoted.csv",
        csv_bytes('id,name\n000130,"Line one\nLine two"\n'),
        staged={"000130": {"name": "Line one\nLine two"}},
    ),
    Sample(
        "tab-separated",
        "customers.tsv",
        csv_bytes("id\tname\n000135\tTab, Name\n"),
        staged={"000135": {"name": "Tab, Name"}},
    ),
    Sample(
        "formula-like cells stay text",
        "formulas.csv",
        csv_bytes(
            'id,name,document_number\n000136,"=HYPERLINK(""http://evil.example"",""x"")",'
            "+1 555 0100\n000137,@SUM(A1:A9),-2+3\n"
        ),
        staged={
            "000136": {
                "name": '=HYPERLINK("http://evil.example","x")',
                "document_number": "+1 555 0100",
            },
            "000137": {"name": "@SUM(A1:A9)", "document_number": "-2+3"},
        },
    ),
    Sample(
        "markup in cells and in the file name",
        f"{FILE_MARKUP}.csv",
        csv_bytes(f'id,name,country\n000138,"{SCRIPT}",<b onmouseover=alert(1)>CO</b>\n'),
        staged={"000138": {"name": SCRIPT, "country": "<b onmouseover=alert(1)>CO</b>"}},
        has_markup=True,
    ),
    Sample(
        "leading zeros in XLSX, as text and as a zero-padded number",
        "zeros.xlsx",
        xlsx_with_zero_padded_ids(),
        staged={"000132": {"name": "Text cell"}, "000133": {"name": "Number shown as 000133"}},
    ),
    Sample(
        "leading zeros in JSON rows",
        "zeros.json",
        json.dumps([{"id": "000134", "name": "Json"}]).encode(),
        staged={"000134": {"name": "Json"}},
    ),
    Sample(
        "a number in scientific notation",
        "balances.csv",
        csv_bytes(f"customer_id,reward_id,amount\n{OWNER},{REWARD},1.5E+3\n"),
        kind="balances",
        staged={OWNER: {"amount": Decimal("1500")}},
    ),
    # --- refused, with the problem named ----------------------------------------------------
    Sample("blank lines only", "blank.csv", b"\r\n  \r\n\n", refused=str(ERR_EMPTY)),
    Sample("header only", "header.csv", b"id,name,email\r\n", refused=str(ERR_NO_ROWS)),
    Sample(
        "too many cells",
        "wide.csv",
        b"id,name\n000140,Ann,extra\n",
        refused="has 3 cells but the header has 2",
        where=(2, ""),
    ),
    Sample(
        "too few cells",
        "narrow.csv",
        b"id,name,email\n000141,Ann,ann@example.com\n000142\n",
        refused="has 1 cells but the header has 3",
        where=(3, ""),
    ),
    Sample(
        "unclosed quote",
        "quote.csv",
        b'id,name\n000143,"Never closed\n000144,Bob\n',
        refused="a quote may be left open",
        where=(2, ""),
    ),
    Sample(
        "newline inside an unquoted field",
        "broken-line.csv",
        b"id,name,email\n000145,John\nSmith,john@example.com\n",
        refused="has 2 cells but the header has 3",
        where=(2, ""),
    ),
    Sample("NUL bytes", "nul.csv", b"id,name\n000146,A\x00B\n", refused=str(ERR_NUL_BYTES)),
    Sample(
        "a PNG named .csv",
        "image.csv",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)),
        refused=str(ERR_NUL_BYTES),
    ),
    Sample(
        "binary bytes without NUL named .csv",
        "noise.csv",
        binary_without_nul(),
        refused="are not those of a customers file",
        asks_mapping=True,
    ),
    Sample(
        "a zip renamed .xlsx",
        "archive.xlsx",
        zip_of({"readme.txt": b"not a workbook"}),
        refused=str(ERR_XLSX_NOT_WORKBOOK),
    ),
    Sample(
        "a CSV renamed .xlsx",
        "renamed.xlsx",
        b"id,name\n000147,Ann\n",
        refused=str(ERR_XLSX_NOT_ZIP),
    ),
    Sample(
        "XLSX zip bomb",
        "bomb.xlsx",
        xlsx_rewritten("xl/worksheets/sheet1.xml", zip_bomb),
        refused="too big to be safe",
    ),
    Sample(
        "XLSX entity expansion (billion laughs)",
        "laughs.xlsx",
        xlsx_rewritten("xl/worksheets/sheet1.xml", billion_laughs),
        refused=str(ERR_XLSX_ENTITIES),
    ),
    Sample(
        "XLSX external entity",
        "xxe.xlsx",
        xlsx_rewritten("xl/workbook.xml", external_entity),
        refused=str(ERR_XLSX_ENTITIES),
    ),
    Sample(
        "10,000-character cell",
        "long.csv",
        csv_bytes(f"id,name\n000148,{'x' * 10_000}\n"),
        refused="is 10000 characters long; at most 255 are allowed",
        where=(2, "name"),
    ),
    Sample(
        "day-first date",
        "dmy.csv",
        b"id,registration_date\n000149,31/12/2023\n",
        refused="is not a date-time such as 2023-11-07T05:31:56Z",
        where=(2, "registration_date"),
    ),
    Sample(
        "month-first date",
        "mdy.csv",
        b"id,name,dob\n000150,Ann,12/31/2023\n",
        refused="is not a date-time such as 2023-11-07T05:31:56Z",
        where=(2, "dob"),
    ),
    Sample(
        "decimal comma and thousands point",
        "comma.csv",
        csv_bytes(f'customer_id,reward_id,amount\n{OWNER},{REWARD},"1.234,56"\n'),
        kind="balances",
        refused="use a point for decimals and no thousands separator",
        where=(2, "amount"),
    ),
    Sample(
        "a number in scientific notation beyond the amount's digits",
        "huge.csv",
        csv_bytes(f"customer_id,reward_id,amount\n{OWNER},{REWARD},1.23E+11\n"),
        kind="balances",
        refused="is too large",
        where=(2, "amount"),
    ),
    Sample(
        "id repeated in the file",
        "repeat.csv",
        b"id,name\n000151,Ann\n000151,Bob\n",
        refused="appears again in this file (first at row 2)",
        where=(3, "id"),
    ),
    Sample(
        "Excel's sep= line",
        "excel-sep.csv",
        b"sep=;\nid;name\n000152;Ann\n",
        refused="Not matched: “sep=”",
        asks_mapping=True,
    ),
    Sample(
        "no id column",
        "noid.csv",
        b"name,email\nAnn,ann@example.com\n",
        refused=str(ERR_MISSING_COLUMNS % {"columns": "“id”"}),
    ),
    Sample(
        "metadata nested too deeply",
        "deep-metadata.csv",
        csv_bytes("id,metadata\n000153," + "[" * 5000 + "\n"),
        refused="is not valid JSON",
        where=(2, "metadata"),
    ),
    Sample(
        "metadata: an object nested 900 levels deep",
        "deep-object-metadata.csv",
        csv_bytes('id,metadata\n000154,"' + '{""a"":' * 900 + "1" + "}" * 900 + '"\n'),
        refused="nested more than 32 levels deep",
        where=(2, "metadata"),
    ),
    Sample(
        "metadata of 100 kB for one customer",
        "big-metadata.csv",
        csv_bytes('id,metadata\n000155,"{""notes"": ""' + "x" * 100_000 + '""}"\n'),
        refused="at most 64.0\u00a0KB per customer",
        where=(2, "metadata"),
    ),
    Sample(
        "JSON nested too deeply",
        "deep.json",
        b"[" * 100_000,
        refused=str(ERR_JSON_TOO_DEEP),
    ),
    Sample(
        "JSON integer of 5,000 digits",
        "digits.json",
        b'[{"id": ' + b"1" * 5000 + b"}]",
        refused=str(ERR_JSON_UNREADABLE).split(":")[0],
    ),
    Sample(
        "markup in a refused file's name",
        f"{FILE_MARKUP}.csv",
        b"id,name\r\n",
        refused=str(ERR_NO_ROWS),
        has_markup=True,
    ),
]
IDS = [sample.label for sample in CORPUS]


@pytest.fixture
def target(importer):
    """A fresh batch holding one customer (balances need one), by the importer."""
    batch = BatchFactory(name=f"bad-files-{uuid.uuid4().hex[:6]}", created_by=importer)
    CustomerFactory(batch=batch, legacy_id=OWNER, email="owner@example.com")
    return batch


def counts(batch) -> tuple[int, int]:
    return (
        StagedCustomer.objects.filter(batch=batch).count(),
        StagedBalance.objects.filter(batch=batch).count(),
    )


def staged_value(batch, sample: Sample, key: str, attribute: str):
    if sample.kind == "balances":
        return getattr(StagedBalance.objects.get(batch=batch, customer__legacy_id=key), attribute)
    value = getattr(StagedCustomer.objects.get(batch=batch, legacy_id=key), attribute)
    return value.isoformat() if hasattr(value, "isoformat") else value


def assert_staged(batch, sample: Sample, before: tuple[int, int]) -> None:
    added = len(sample.staged)
    customers, balances = counts(batch)
    if sample.kind == "balances":
        assert (customers, balances) == (before[0], before[1] + added)
    else:
        assert (customers, balances) == (before[0] + added, before[1])
    for key, values in sample.staged.items():
        for attribute, expected in values.items():
            assert staged_value(batch, sample, key, attribute) == expected, (key, attribute)


def assert_escaped(html: str, *markup: str) -> None:
    """Each piece of markup shows in the page as text, never as markup."""
    for piece in markup:
        assert piece not in html, piece
        assert escape(piece) in html, piece


@pytest.mark.parametrize("sample", CORPUS, ids=IDS)
def test_file_through_the_api(sample: Sample, as_user, upload, importer, target):
    before = counts(target)

    # The corpus is about reading files: rows that validation would flag (no email, say) stage.
    response = upload(
        as_user(importer), target.pk, sample.kind, sample.name, sample.content, on_problems="flag"
    )

    assert response.status_code < 500
    body = response.json()
    if not sample.is_refused:
        assert response.status_code == 201, body
        assert body["staged"] == {sample.kind: len(sample.staged)}
        assert_staged(target, sample, before)
        return
    assert response.status_code == 400, body
    assert counts(target) == before
    problems = body.get("problems", [])
    text = " ".join([body["details"], *body.get("fields", {}).get("file", [])])
    assert sample.refused in text, body
    if sample.where is not None:
        assert any(
            (p["row"], p["column"]) == sample.where and sample.refused in p["message"]
            for p in problems
        ), problems


@pytest.mark.parametrize("sample", CORPUS, ids=IDS)
def test_file_through_the_admin_import(sample: Sample, client, importer, target):
    client.force_login(importer)
    before = counts(target)

    response = preview(client, target, sample.kind, sample.name, sample.content)

    assert response.status_code < 500
    html = response.content.decode()
    if sample.asks_mapping:
        # Nothing is read yet: the operator maps the columns, or goes back.
        assert response.context["form"].__class__.__name__ == "MappingStepForm"
        assert counts(target) == before
        return
    if sample.has_markup:
        assert_escaped(html, FILE_MARKUP, *([] if sample.is_refused else [SCRIPT]))
    confirm_form = response.context.get("confirm_form")
    if not sample.is_refused:
        assert confirm_form is not None, response.context["result"].messages()
        assert counts(target) == before  # the preview stages nothing
        done = confirm(client, response, on_problems="flag")
        assert done.status_code == 302, done.content[:2000]
        assert_staged(target, sample, before)
        page = client.get(done["Location"])
        if sample.has_markup:
            assert_escaped(page.content.decode(), FILE_MARKUP)
            listing = client.get(
                reverse("admin:customers_stagedcustomer_changelist"),
                {"batch__id__exact": target.pk},
            )
            assert_escaped(listing.content.decode(), SCRIPT)
        return
    assert confirm_form is None
    assert counts(target) == before
    result = response.context.get("result")
    form = response.context.get("form")
    messages = [str(problem) for problem in result.problems] if result else []
    if form is not None:
        messages += [str(error) for errors in form.errors.values() for error in errors]
    assert any(sample.refused in message for message in messages), messages
    assert escape(sample.refused) in html
    if sample.where is not None:
        assert any(
            (p.row, p.column) == sample.where and sample.refused in p.message
            for p in result.problems
        ), result.problems


def test_empty_file_is_refused_with_a_message_everywhere(client, as_user, upload, importer, target):
    client.force_login(importer)
    before = counts(target)

    page = preview(client, target, "customers", "empty.csv", b"")
    answer = upload(as_user(importer), target.pk, "customers", "empty.csv", b"")

    assert page.status_code == 200
    assert "The submitted file is empty." in page.context["form"].errors["import_file"]
    assert answer.status_code == 400
    assert answer.json()["fields"]["file"] == ["The submitted file is empty."]
    assert counts(target) == before


def test_upload_over_the_size_cap_is_refused_in_admin_and_api(
    client, as_user, upload, importer, target, settings
):
    settings.MIGRATION_UPLOAD_MAX_BYTES = 1024
    content = b"id,name\n" + b"".join(b"%06d,Someone\n" % n for n in range(200))
    client.force_login(importer)
    before = counts(target)

    page = preview(client, target, "customers", "big.csv", content)
    answer = upload(as_user(importer), target.pk, "customers", "big.csv", content)

    expected = f"The file is {len(content) / 1024:.1f}\xa0KB; files up to 1.0\xa0KB can be"
    assert any(expected in error for error in page.context["form"].errors["import_file"])
    assert page.context.get("confirm_form") is None
    assert answer.status_code == 400
    assert expected in answer.json()["fields"]["file"][0]
    assert counts(target) == before


def test_xlsx_is_parsed_with_defusedxml():
    import openpyxl.xml

    assert openpyxl.xml.DEFUSEDXML is True
