"""Files are read from where they are, a slice at a time, and the checks across rows keep
no text per row; what an operator sees stays the same: the same rows, the same problems
on the same rows, "first at row N" wherever in the file the first one was."""

from __future__ import annotations

import io
import json

import pytest

from customers.formats import CSV, JSON, XLSX, FileReadError, jsonstream
from customers.formats.jsonstream import JSONText
from customers.models import StagedCustomer, StagedDevice
from customers.resources import base
from customers.resources.seen import FirstRows
from customers.services.problems import ERR_DUPLICATE_EMAIL
from customers.staging import batch_stage_file
from tests.customers.importing import to_csv, to_json_rows, to_xlsx
from tests.factories import BatchFactory, CustomerFactory

HEADER = ["id", "name", "email", "registration_date"]
WHEN = "2023-11-07T05:31:56Z"
WRITERS = {"csv": to_csv, "xlsx": to_xlsx, "json": to_json_rows}


def _customers(count: int, **changes: list[str]) -> list[list[str]]:
    """A header and ``count`` customers; ``changes``: a row (by legacy id) replaced."""
    rows = [[f"C-{n:03d}", f"Customer {n}", f"c{n}@example.com", WHEN] for n in range(count)]
    for legacy_id, row in changes.items():
        rows[int(legacy_id.split("_")[1])] = row
    return [HEADER, *rows]


def _stage(batch, user, content, *, kind="customers", name="customers.csv", dry_run=True):
    return batch_stage_file(
        batch=batch, kind=kind, file_name=name, content=content, user=user, dry_run=dry_run
    )


def _where(result) -> list[tuple]:
    return [(p.row, p.record, p.column, p.message) for p in result.problems]


def _staged(batch) -> list[tuple]:
    return list(
        StagedCustomer.objects.filter(batch=batch)
        .order_by("legacy_id")
        .values_list("legacy_id", "name", "email", "registration_date")
    )


# --- a file on disk or in a file object stages as its bytes do ---------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize("extension", ["csv", "xlsx", "json"])
def test_a_file_given_as_a_path_stages_the_same_as_its_bytes(tmp_path, importer, extension):
    content = WRITERS[extension](_customers(30))
    path = tmp_path / f"customers.{extension}"
    path.write_bytes(content)
    by_bytes, by_path = BatchFactory(name="bytes"), BatchFactory(name="path")

    from_bytes = _stage(by_bytes, importer, content, name=path.name, dry_run=False)
    from_path = _stage(by_path, importer, path, name=path.name, dry_run=False)

    assert from_path.staged == from_bytes.staged == {"customers": 30}
    assert from_path.sample_rows == from_bytes.sample_rows
    assert from_path.encoding == from_bytes.encoding
    assert _staged(by_path) == _staged(by_bytes)


@pytest.mark.django_db
@pytest.mark.parametrize("extension", ["csv", "xlsx", "json"])
def test_a_file_with_problems_given_as_a_file_object_is_refused_the_same(importer, extension):
    rows = _customers(12, C_004=["C-004", "Dee", "not-an-email", "31/12/2023"])
    content = WRITERS[extension](rows)
    handle = io.BytesIO(content)
    handle.seek(5)  # wherever the caller left it

    from_bytes = _stage(BatchFactory(name="bytes"), importer, content, name=f"c.{extension}")
    from_file = _stage(BatchFactory(name="file"), importer, handle, name=f"c.{extension}")

    assert from_file.problems
    assert _where(from_file) == _where(from_bytes)
    assert not handle.closed  # the caller's file is theirs to close


def test_rows_of_a_file_on_disk_read_again_are_the_same(tmp_path):
    path = tmp_path / "customers.csv"
    path.write_bytes(to_csv(_customers(5)))

    table = CSV().create_dataset(path)

    assert list(table.rows()) == list(table.rows()) == list(CSV().create_dataset(path).rows())
    assert [number for number, _values in table.rows()] == [2, 3, 4, 5, 6]


def test_an_xlsx_on_disk_reads_as_its_bytes(tmp_path):
    content = to_xlsx(_customers(3))
    path = tmp_path / "c.xlsx"
    path.write_bytes(content)

    from_path, from_bytes = XLSX().create_dataset(path), XLSX().create_dataset(content)

    assert from_path.headers == from_bytes.headers
    assert list(from_path.rows()) == list(from_bytes.rows()) == list(from_path.rows())


# --- JSON lists, read a slice at a time ----------------------------------------------------------
@pytest.fixture
def small_slices(monkeypatch):
    """Slices of a few characters: every row crosses a slice's end somewhere."""
    monkeypatch.setattr(jsonstream, "SLICE_CHARS", 7)


def test_a_json_list_read_in_slices_gives_the_rows_and_numbers_json_loads_gives(small_slices):
    rows = [{"id": f"C-{n}", "name": "Zoë " * n, "email": None, "n": n / 3} for n in range(40)]
    rows[7]["metadata"] = {"nested": [1, 2, {"deep": "x"}]}
    text = json.dumps(rows, indent=1, ensure_ascii=False)

    table = JSON().create_dataset(text.encode())

    assert table.headers == ["id", "name", "email", "n", "metadata"]
    assert list(table.rows()) == [
        (number, [row.get(h) for h in table.headers]) for number, row in enumerate(rows, 1)
    ]


@pytest.mark.parametrize(
    "text",
    [
        '[{"id": "C-1"},\n {"id": "C-2"}\n {"id": "C-3"}]',
        '[{"id": "C-1"},\n\n {"id": "C-2", "name": "unterminated}\n]',
        '[{"id": "C-1"}, {"id": 1.}]',
        '[{"id": "C-1"},]',
        '[{"id": "C-1"}] trailing',
        "[\n" + ",\n".join(f'{{"id": "C-{n}"}}' for n in range(300)) + ",\n {id: 3}]",
        '[{"id": "C-1"}, {"id": "\\u12"}]',
        "[",
    ],
)
def test_invalid_json_is_refused_at_the_line_and_column_json_loads_names(small_slices, text):
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(text)
    error = expected.value

    with pytest.raises(FileReadError) as refused:
        JSON().create_dataset(text.encode())

    assert f"{error.msg} at line {error.lineno}, column {error.colno}" in str(refused.value)


@pytest.mark.parametrize(
    "text",
    ['[1, {"a": [true, false, null]}, "x", -1.5e3]', "  []  ", '{"customers": []}', "12", '""'],
)
@pytest.mark.parametrize("slice_chars", [1, 2, 5, 1000])
def test_json_text_reads_any_document_as_json_loads_does(text, slice_chars):
    reading = JSONText(io.StringIO(text).read, slice_chars=slice_chars)

    read = list(reading.rows()) if reading.is_list() else reading.document()

    assert read == json.loads(text)


def test_a_json_list_with_a_row_that_is_no_object_is_refused(small_slices):
    with pytest.raises(FileReadError, match="must be an object"):
        JSON().create_dataset(b'[{"id": "C-1"}, ["C-2"], {"id": "C-3"}]')


# --- checks across rows, across the blocks rows are checked in ----------------------------------
@pytest.fixture
def blocks_of_two(monkeypatch):
    monkeypatch.setattr(base, "WRITE_BLOCK", 2)


@pytest.mark.django_db
@pytest.mark.parametrize("dry_run", [True, False])
def test_a_repeated_id_blocks_apart_names_its_first_row(blocks_of_two, batch, importer, dry_run):
    rows = _customers(9, C_007=["C-001", "Again", "again@example.com", WHEN])

    result = _stage(batch, importer, to_csv(rows), dry_run=dry_run)

    # (Once its first row is written, the repeated id is also told as already staged.)
    assert {(p.row, p.record, p.column) for p in result.problems} == {(9, "C-001", "id")}
    assert "appears again in this file (first at row 3)" in result.problems[0].message
    assert result.staged == {}
    assert not StagedCustomer.objects.filter(batch=batch).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("dry_run", [True, False])
def test_a_repeated_email_blocks_apart_is_told_on_every_row_with_the_first(
    blocks_of_two, batch, importer, dry_run
):
    rows = _customers(
        10,
        C_006=["C-006", "Ann B", "C1@Example.com", WHEN],
        C_009=["C-009", "Ann C", "c1@example.COM", WHEN],
    )

    result = _stage(batch, importer, to_csv(rows), dry_run=dry_run)

    assert [(p.row, p.record, p.column) for p in result.problems] == [
        (3, "C-001", "email"),
        (8, "C-006", "email"),
        (11, "C-009", "email"),
    ]
    others = {
        3: "“C-006”, “C-009”",
        8: "“C-001”, “C-009”",
        11: "“C-001”, “C-006”",
    }
    emails = {3: "c1@example.com", 8: "C1@Example.com", 11: "c1@example.COM"}
    assert [p.message for p in result.problems] == [
        str(ERR_DUPLICATE_EMAIL % {"email": emails[row], "others": others[row]})
        for row in (3, 8, 11)
    ]
    assert all(p.is_flaggable for p in result.problems)


@pytest.mark.django_db
def test_a_repeated_metric_period_blocks_apart_names_its_first_row(blocks_of_two, batch, importer):
    for n in range(3):
        CustomerFactory(batch=batch, legacy_id=f"C-{n:03d}")
    rows = [["customer_id", "period"]] + [[f"C-{n % 3:03d}", "lifetime"] for n in range(3)]
    rows += [["C-002", "last_year"], ["C-001", "lifetime"]]

    result = _stage(batch, importer, to_csv(rows), kind="metrics", name="metrics.csv")

    assert [(p.row, p.record, p.column) for p in result.problems] == [(6, "C-001", "period")]
    assert "first at row 3" in result.problems[0].message


@pytest.mark.django_db
def test_a_child_file_finds_customers_named_across_many_blocks(blocks_of_two, batch, importer):
    pks = {f"C-{n:03d}": CustomerFactory(batch=batch, legacy_id=f"C-{n:03d}").pk for n in range(25)}
    CustomerFactory(batch=BatchFactory(name="other"), legacy_id="C-999")
    order = [f"C-{(n * 7) % 25:03d}" for n in range(25)]
    rows = [["customer_id", "device_token"]] + [[c, f"token-{c}"] for c in order]

    checked = _stage(batch, importer, to_csv([*rows, ["C-999", "elsewhere"]]), kind="devices",
                     name="devices.csv")  # fmt: skip
    staged = _stage(batch, importer, to_csv(rows), kind="devices", name="devices.csv",
                    dry_run=False)  # fmt: skip

    assert [(p.row, p.record, p.column) for p in checked.problems] == [(27, "C-999", "customer_id")]
    assert staged.staged == {"devices": 25}
    assert dict(StagedDevice.objects.values_list("device_token", "customer_id")) == {
        f"token-{c}": pks[c] for c in order
    }


# --- the compact table of first rows -------------------------------------------------------------
def test_first_rows_tells_the_first_row_of_each_key_as_it_grows():
    first = FirstRows(slots=4)
    keys = [f"key-{n % 5000}" for n in range(12_000)]

    found = [first.first(key, row) for row, key in enumerate(keys, start=2)]

    assert found == [2 + n % 5000 for n in range(12_000)]
    assert len(first) == 5000
