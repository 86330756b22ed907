"""A background upload's problems read in the reader's language, whatever the language of
the worker that checked the file: each is kept as where it is and its message's template
and parameters (``RowProblem.as_json``); an upload checked before that shows the lines it
was kept with."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils import translation

from console.messages import Message
from customers.contract.messages import ContractError
from customers.models import Outcome, StagingUpload
from customers.resources.base import ERR_NO_ROWS
from customers.resources.results import RowProblem, StagingResult
from customers.services import upload_check, upload_create
from customers.widgets import ERR_NOT_A_NUMBER
from tests.customers.importing import to_csv
from tests.factories import BatchFactory, CustomerFactory

pytestmark = pytest.mark.django_db

POINTS = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
HEADER = ["id", "name", "email", "registration_date"]


def customer(legacy_id: str, email: str = "") -> list[str]:
    """A customers file's row that breaks no rule (but its ``email``, when given)."""
    return [legacy_id, "Ann", email or f"{legacy_id.lower()}@example.com", "2023-11-07"]


def checked_in_english(batch, user, kind: str, name: str, rows: list[list[str]] | bytes):
    """``rows`` (or a file's bytes) uploaded as file ``name`` and checked by a worker
    speaking English."""
    content = rows if isinstance(rows, bytes) else to_csv(rows)
    upload = upload_create(batch=batch, kind=kind, file_name=name, content=content, user=user)
    with translation.override("en"):
        return upload_check(upload_id=upload.pk)


def lines_in(language: str, upload: StagingUpload) -> list[str]:
    with translation.override(language):
        return StagingUpload.objects.get(pk=upload.pk).problem_lines()


def test_a_missing_column_reads_in_the_readers_language(batch, importer):
    upload = checked_in_english(batch, importer, "customers", "c.csv", [["name"], ["Ann"]])

    assert upload.status == StagingUpload.Status.REFUSED
    assert lines_in("es", upload) == ["c.csv: Falta(n) la(s) columna(s) obligatoria(s) “id”."]
    assert lines_in("en", upload) == ["c.csv: Required column(s) “id” are missing."]


def test_a_file_that_cannot_be_read_says_why_in_the_readers_language(batch, importer):
    upload = checked_in_english(batch, importer, "customers", "c.csv", b"")

    assert lines_in("es", upload) == ["c.csv: El archivo está vacío."]
    assert lines_in("en", upload) == ["c.csv: The file is empty."]


def test_headers_no_mapping_matches_read_in_the_readers_language(batch, importer):
    upload = checked_in_english(batch, importer, "customers", "c.csv", [["colour"], ["red"]])

    spanish, english = lines_in("es", upload), lines_in("en", upload)
    assert spanish[0].startswith(
        "c.csv: Los encabezados de este archivo no son los de un archivo de customers y no se "
        "indicó ningún mapeo. Sin correspondencia: “colour”."
    )
    assert english[0].startswith(
        "c.csv: The headers of this file are not those of a customers file, and no mapping "
        "was given. Not matched: “colour”."
    )
    assert spanish[1] == (
        "c.csv: No se reconoció ninguna columna para el/los campo(s) obligatorio(s) id."
    )
    assert english[1] == "c.csv: No column was recognised for the required field(s) id."


def test_a_cell_a_widget_refuses_reads_in_the_readers_language(batch, importer):
    CustomerFactory(batch=batch, legacy_id="C-001")
    rows = [["customer_id", "reward_id", "amount"], ["C-001", POINTS, "doce"]]

    upload = checked_in_english(batch, importer, "balances", "b.csv", rows)

    assert upload.status == StagingUpload.Status.REFUSED
    assert upload.problems == [
        {
            "row": 2,
            "column": "amount",
            "record": "C-001",
            "template": str(ERR_NOT_A_NUMBER),
            "params": {"value": "doce"},
        }
    ]
    assert lines_in("es", upload) == [
        "b.csv: fila 2 (id “C-001”), columna “amount”: “doce” no es un número; use punto para "
        "los decimales y ningún separador de miles, por ejemplo 1234.56"
    ]
    assert lines_in("en", upload) == [
        "b.csv: row 2 (id “C-001”), column “amount”: “doce” is not a number; use a point for "
        "decimals and no thousands separator, e.g. 1234.56"
    ]


def test_a_broken_rule_of_the_contract_reads_in_the_readers_language(batch, importer):
    rows = [HEADER, customer("C-001", email="bob-at-example")]

    upload = checked_in_english(batch, importer, "customers", "c.csv", rows)

    assert upload.status == StagingUpload.Status.READY  # validation would flag it
    assert lines_in("es", upload) == [
        "c.csv: fila 2 (id “C-001”), columna “email”: “bob-at-example” no es una dirección de "
        "correo electrónico válida."
    ]
    assert lines_in("en", upload) == [
        "c.csv: row 2 (id “C-001”), column “email”: “bob-at-example” is not a valid email address."
    ]


def test_ids_staged_sent_or_repeated_read_in_the_readers_language(batch, importer):
    CustomerFactory(batch=batch, legacy_id="C-001")
    CustomerFactory(batch=BatchFactory(name="winter"), legacy_id="C-002", outcome=Outcome.SENT)
    rows = [HEADER, customer("C-001"), customer("C-002"), customer("C-003"), customer("C-003")]

    upload = checked_in_english(batch, importer, "customers", "c.csv", rows)

    assert lines_in("es", upload) == [
        "c.csv: fila 2 (id “C-001”), columna “id”: ya hay un cliente con id “C-001” preparado "
        "en este lote",
        "c.csv: fila 3 (id “C-002”), columna “id”: El lote “winter” ya lo envió a Masivo, por "
        "eso se excluye aquí. Marque “volver a enviar” para enviarlo de todos modos.",
        "c.csv: fila 5 (id “C-003”), columna “id”: “C-003” vuelve a aparecer en este archivo "
        "(primero en la fila 4)",
    ]
    assert lines_in("en", upload) == [
        "c.csv: row 2 (id “C-001”), column “id”: a customer with id “C-001” is already staged "
        "in this batch",
        "c.csv: row 3 (id “C-002”), column “id”: Already sent to Masivo by batch “winter”, so "
        "it is excluded here. Tick “send again” to send it anyway.",
        "c.csv: row 5 (id “C-003”), column “id”: “C-003” appears again in this file (first at "
        "row 4)",
    ]


def test_the_upload_page_lists_the_problems_in_the_readers_language(client, batch, importer):
    rows = [HEADER, customer("C-001", email="bob-at-example")]
    upload = checked_in_english(batch, importer, "customers", "c.csv", rows)
    client.force_login(importer)
    url = reverse("admin:customers_stagingbatch_upload", args=[batch.pk, upload.pk])

    page = client.get(url, HTTP_ACCEPT_LANGUAGE="es").content.decode()

    assert "“bob-at-example” no es una dirección de correo electrónico válida." in page
    assert "is not a valid email address" not in page
    # The kind of file is named in the reader's language too.
    assert re.search(r"<th>Tipo</th><td>clientes</td>", page)


def test_an_upload_kept_as_lines_shows_them_as_they_were(batch, importer):
    upload = checked_in_english(batch, importer, "customers", "c.csv", [["name"], ["Ann"]])
    old = ["c.csv: row 2 (id “C-001”), column “email”: “bob” is not a valid email address."]
    StagingUpload.objects.filter(pk=upload.pk).update(problems=old)

    assert lines_in("es", upload) == old
    assert lines_in("en", upload) == old


def test_a_problem_keeps_what_it_was_given_untranslated_or_as_it_is():
    result = StagingResult(kind="balances")
    result.add_problem(None, "", ERR_NO_ROWS)
    result.add_problem(2, "amount", ContractError(ERR_NOT_A_NUMBER, value="doce"))
    result.add_problem(3, "amount", ValueError(Message.of(ERR_NOT_A_NUMBER, value="x")))
    result.add_problem(4, "", "palabras de otra parte")

    kept = [RowProblem.from_json(problem.as_json()) for problem in result.problems]

    with translation.override("es"):
        assert [str(problem) for problem in kept] == [
            "El archivo tiene encabezado, pero ninguna fila.",
            "fila 2, columna “amount”: “doce” no es un número; use punto para los decimales y "
            "ningún separador de miles, por ejemplo 1234.56",
            "fila 3, columna “amount”: “x” no es un número; use punto para los decimales y "
            "ningún separador de miles, por ejemplo 1234.56",
            "fila 4: palabras de otra parte",
        ]
    assert result.problems[3].as_json() == {
        "row": 4,
        "column": "",
        "record": "",
        "text": "palabras de otra parte",
    }
