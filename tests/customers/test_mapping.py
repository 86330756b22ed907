"""Mapping files in a legacy system's own shape: every option, every refusal, and the
message an operator reads for a bad cell (file, row, column, value)."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import openpyxl
import pytest

from customers.mapping import MappingError, columns_suggest, mapping_parse
from customers.models import StagedBalance, StagedCustomer
from customers.staging import batch_stage_file
from tests.factories import BatchFactory, CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db

CLIENTES = (
    "Código;Nombre;Apellidos;Correo;Sexo;F. nacimiento;Alta;Estado\n"
    "C-001;Ana;García López;Ana.Garcia@Example.com;M;31/12/1980;07/11/2023 00:31:56;A\n"
    "000777;Luis;;luis@example.com;H;01/02/1975;01/01/2020 19:00:00;I\n"
).encode()

MAPPING = {
    "kind": "customers",
    "fields": {
        "id": "Código",
        "name": {"join": ["Nombre", "Apellidos"], "separator": " "},
        "email": {"column": "Correo", "lower": True},
        "gender": {"column": "Sexo", "values": {"H": "MALE", "M": "FEMALE", "O": "OTHER"}},
        "dob": {"column": "F. nacimiento", "date_format": "%d/%m/%Y"},
        "registration_date": {
            "column": "Alta",
            "date_format": "%d/%m/%Y %H:%M:%S",
            "timezone": "America/Bogota",
        },
        "status": {"column": "Estado", "values": {"A": "ACTIVE", "I": "INACTIVE"}},
        "country": {"value": "CO"},
    },
    "unmapped": "refuse",
}


def _stage(
    content: bytes, mapping, *, kind="customers", name="clientes.csv", batch=None, dry_run=False
):
    batch = batch or BatchFactory()
    result = batch_stage_file(
        batch=batch,
        kind=kind,
        file_name=name,
        content=content,
        user=UserFactory(),
        dry_run=dry_run,
        mapping=mapping,
    )
    return batch, result


def _problems(document, kind=None) -> list[str]:
    with pytest.raises(MappingError) as caught:
        mapping_parse(document, kind=kind)
    return [str(m) for m in caught.value.messages]


def test_a_spanish_export_stages_through_its_mapping():
    batch, result = _stage(CLIENTES, MAPPING)

    assert result.messages() == []
    ana = StagedCustomer.objects.get(batch=batch, legacy_id="C-001")
    assert ana.name == "Ana García López"
    assert ana.email == "ana.garcia@example.com"
    assert ana.gender == "FEMALE"
    assert ana.dob == dt.datetime(1980, 12, 31, tzinfo=dt.UTC)
    # 00:31:56 in Bogota (UTC-5) is 05:31:56 UTC.
    assert ana.registration_date == dt.datetime(2023, 11, 7, 5, 31, 56, tzinfo=dt.UTC)
    assert ana.status == "ACTIVE"
    assert ana.country == "CO"
    luis = StagedCustomer.objects.get(batch=batch, legacy_id="000777")
    assert luis.name == "Luis"
    assert luis.registration_date == dt.datetime(2020, 1, 2, 0, 0, tzinfo=dt.UTC)


def test_a_value_missing_from_the_map_names_row_column_and_value():
    content = CLIENTES.replace(b";H;01/02", b";X;01/02")

    batch, result = _stage(content, MAPPING)

    assert len(result.problems) == 1
    problem = result.problems[0]
    assert (problem.row, problem.column) == (3, "Sexo")
    assert "“X”" in problem.message
    assert StagedCustomer.objects.filter(batch=batch).count() == 0


def test_a_date_not_in_the_format_is_a_row_error():
    content = CLIENTES.replace(b"31/12/1980", b"1980-12-31")

    _batch, result = _stage(content, MAPPING, dry_run=True)

    assert [(p.row, p.column) for p in result.problems] == [(2, "F. nacimiento")]
    assert "%d/%m/%Y" in result.problems[0].message


def test_an_empty_cell_takes_the_default_and_values_do_not_apply_to_it():
    mapping = {**MAPPING, "fields": {**MAPPING["fields"]}}
    mapping["fields"]["status"] = {
        "column": "Estado",
        "values": {"A": "ACTIVE"},
        "default": "INACTIVE",
    }
    mapping["fields"]["gender"] = {"column": "Sexo", "values": {"H": "MALE"}}
    content = CLIENTES.replace(b";M;31/12", b";;31/12").replace(b";I\n", b";\n")

    batch, result = _stage(content, mapping)

    assert result.messages() == []
    luis = StagedCustomer.objects.get(batch=batch, legacy_id="000777")
    assert luis.status == "INACTIVE"
    assert StagedCustomer.objects.get(batch=batch, legacy_id="C-001").gender == ""


def test_split_takes_one_trimmed_part_numbered_from_one():
    content = (
        "Código;Nombre completo;Correo;Alta\nC-1; García , Ana ;a@example.com;2024-01-01\n".encode()
    )
    mapping = {
        "kind": "customers",
        "fields": {
            "id": "Código",
            "name": {"split": "Nombre completo", "separator": ",", "part": 2},
            "email": "Correo",
            "registration_date": "Alta",
        },
    }

    batch, result = _stage(content, mapping)

    assert result.messages() == []
    assert StagedCustomer.objects.get(batch=batch).name == "Ana"


def test_numbers_with_comma_decimals_and_dot_thousands():
    customer = CustomerFactory(legacy_id="C-1")
    content = (
        b"Cliente;Recompensa;Saldo\n"
        b"C-1;3c90c3cc-0d44-4b50-8888-8dd25736052a;1.234,50\n"
        b"C-1;3c90c3cc-0d44-4b50-8888-8dd25736052b;-7,25\n"
    )
    mapping = {
        "kind": "balances",
        "fields": {
            "customer_id": "Cliente",
            "reward_id": "Recompensa",
            "amount": {"column": "Saldo", "decimal_separator": ",", "thousands_separator": "."},
        },
    }

    _batch, result = _stage(
        content, mapping, kind="balances", name="saldos.csv", batch=customer.batch
    )

    assert result.messages() == []
    amounts = sorted(StagedBalance.objects.values_list("amount", flat=True))
    assert amounts == [Decimal("-7.25"), Decimal("1234.50")]


@pytest.mark.parametrize("cell", ["1.23,50", "$1.234,50", "1 234,50", "12,5,0"])
def test_a_badly_written_number_is_a_row_error(cell):
    customer = CustomerFactory(legacy_id="C-1")
    content = (
        f"Cliente;Recompensa;Saldo\nC-1;3c90c3cc-0d44-4b50-8888-8dd25736052a;{cell}\n".encode()
    )
    mapping = {
        "kind": "balances",
        "fields": {
            "customer_id": "Cliente",
            "reward_id": "Recompensa",
            "amount": {"column": "Saldo", "decimal_separator": ",", "thousands_separator": "."},
        },
    }

    _batch, result = _stage(
        content, mapping, kind="balances", name="s.csv", batch=customer.batch, dry_run=True
    )

    assert [(p.row, p.column) for p in result.problems] == [(2, "Saldo")]
    assert cell in result.problems[0].message


def test_spreadsheet_date_cells_are_read_in_the_fields_zone():
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Código", "Correo", "Nombre", "Alta", "Nacimiento"])
    sheet.append(
        [
            "C-1",
            "a@example.com",
            "Ana",
            dt.datetime(2023, 11, 7, 0, 31, 56, 600000),  # noqa: DTZ001 - a spreadsheet's cell
            dt.datetime(1980, 12, 31),  # noqa: DTZ001
        ]
    )
    buffer = io.BytesIO()
    book.save(buffer)
    mapping = {
        "kind": "customers",
        "fields": {
            "id": "Código",
            "email": "Correo",
            "name": "Nombre",
            # The format is for text cells; a date cell ignores it.
            "registration_date": {
                "column": "Alta",
                "date_format": "%d/%m/%Y",
                "timezone": "America/Bogota",
            },
            "dob": "Nacimiento",
        },
    }

    batch, result = _stage(buffer.getvalue(), mapping, name="clientes.xlsx")

    assert result.messages() == []
    ana = StagedCustomer.objects.get(batch=batch)
    assert ana.registration_date == dt.datetime(2023, 11, 7, 5, 31, 57, tzinfo=dt.UTC)
    assert ana.dob == dt.datetime(1980, 12, 31, tzinfo=dt.UTC)


def test_the_batch_time_zone_applies_when_the_mapping_names_none():
    content = "Código;Correo;Nombre;Alta\nC-1;a@example.com;Ana;07/11/2023 10:00\n".encode()
    mapping = {
        "kind": "customers",
        "fields": {
            "id": "Código",
            "email": "Correo",
            "name": "Nombre",
            "registration_date": {"column": "Alta", "date_format": "%d/%m/%Y %H:%M"},
        },
    }
    batch = BatchFactory(time_zone="Europe/Madrid")

    _batch, result = _stage(content, mapping, batch=batch)

    assert result.messages() == []
    staged = StagedCustomer.objects.get(batch=batch).registration_date
    assert staged == dt.datetime(2023, 11, 7, 9, 0, tzinfo=dt.UTC)


def test_headers_match_after_trimming_and_case_folding_but_accents_count():
    content = "\ufeff CÓDIGO ;correo;nombre;alta\nC-1;a@example.com;Ana;2024-01-01\n".encode()
    mapping = {
        "kind": "customers",
        "fields": {
            "id": "código",
            "email": "Correo",
            "name": "Nombre",
            "registration_date": "ALTA",
        },
    }

    _batch, result = _stage(content, mapping, dry_run=True)
    assert result.messages() == []

    unaccented = {**mapping, "fields": {**mapping["fields"], "id": "Codigo"}}
    _batch, result = _stage(content, unaccented, dry_run=True)
    assert "“Codigo”" in result.messages()[0]
    assert "“CÓDIGO”" in result.messages()[0]  # the file's real headers are listed


def test_a_column_no_field_uses_is_refused_unless_unmapped_is_ignore():
    _batch, result = _stage(
        CLIENTES,
        {**MAPPING, "fields": {k: v for k, v in MAPPING["fields"].items() if k != "status"}},
        dry_run=True,
    )
    assert any("“Estado”" in m for m in result.messages())

    ignoring = {
        **MAPPING,
        "unmapped": "ignore",
        "fields": {k: v for k, v in MAPPING["fields"].items() if k != "status"},
    }
    _batch, result = _stage(CLIENTES, ignoring, dry_run=True)
    assert result.messages() == []


def test_a_header_twice_in_the_file_is_refused():
    content = "Código;Correo;correo\nC-1;a@example.com;b@example.com\n".encode()
    mapping = {
        "kind": "customers",
        "fields": {"id": "Código", "email": "Correo"},
        "unmapped": "ignore",
    }

    _batch, result = _stage(content, mapping, dry_run=True)

    assert any("more than once" in m for m in result.messages())


def test_every_mistake_of_a_mapping_is_listed_before_the_file_is_read():
    problems = _problems(
        {
            "kind": "customers",
            "fields": {
                "dob": {"column": "Nacimiento", "date_fromat": "%d/%m/%Y"},
                "registration_date": {"column": "Alta", "date_format": "%Q"},
                "gender": {"column": "Sexo", "values": {"H": "MAN"}},
                "favourite": "Color",
                "email": {"column": "Correo", "timezone": "Mars/Olympus"},
                "name": {"join": "Nombre"},
            },
            "unmapped": "sometimes",
        },
        kind="customers",
    )

    text = "\n".join(problems)
    assert "“date_fromat”" in text
    assert "%Q" in text
    assert "“MAN”" in text
    assert "“favourite”" in text
    assert "Mars/Olympus" in text
    assert "“join”" in text
    assert "“id”" in text  # the required field left unmapped
    assert "“unmapped”" in text


def test_a_mapping_for_another_kind_is_refused():
    problems = _problems(
        {"kind": "balances", "fields": {"customer_id": "a", "reward_id": "b", "amount": "c"}},
        kind="customers",
    )

    assert problems == ["The mapping is for “balances” files, but this is a “customers” file."]


def test_separators_apply_only_to_numbers_and_date_formats_only_to_dates():
    problems = _problems(
        {
            "kind": "customers",
            "fields": {
                "id": {"column": "a", "decimal_separator": ","},
                "name": {"column": "b", "date_format": "%d"},
            },
        }
    )

    assert len(problems) == 2


def test_a_file_with_certain_headers_stages_without_a_mapping():
    content = "Código;Correo;Nombre;Sexo;Alta\nC-1;a@example.com;Ana;FEMALE;2023-11-07\n".encode()

    batch, result = _stage(content, None)

    assert result.messages() == []
    assert result.mapping_document == {
        "kind": "customers",
        "fields": {
            "id": "Código",
            "name": "Nombre",
            "email": "Correo",
            "gender": "Sexo",
            "registration_date": "Alta",
        },
        "unmapped": "refuse",
    }
    assert StagedCustomer.objects.get(batch=batch).email == "a@example.com"


def test_a_foreign_file_without_a_mapping_is_refused_with_a_suggestion():
    batch, result = _stage(CLIENTES, None)

    assert "“Apellidos”" in result.messages()[0]
    assert result.suggested_mapping["fields"]["email"] == "Correo"
    assert StagedCustomer.objects.filter(batch=batch).count() == 0


def test_suggestions_say_how_sure_they_are():
    suggestion = columns_suggest(
        kind="customers", headers=["Código", "Correo del cliente", "E-mail"]
    )

    assert suggestion.matches["id"].certainty == "certain"
    assert suggestion.matches["email"].column == "E-mail"
    assert suggestion.matches["email"].certainty == "certain"
    assert "Correo del cliente" in suggestion.unmatched
