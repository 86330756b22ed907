"""Transactions and events files through every door: the admin's import (preview, then
confirm), its mapping step, a background upload, ``stage_file``, the API, and a mapping
profile for a file in another shape."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from io import StringIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from rest_framework.test import APIClient

from config.celery import app as celery_app
from customers.admin.mapping_form import value_field
from customers.mapping import mapping_parse
from customers.models import (
    MappingProfile,
    StagedEvent,
    StagedTransaction,
    StagingBatch,
    StagingUpload,
)
from customers.staging import batch_stage_file
from tests.customers.importing import confirm, preview, stage, to_csv, to_xlsx
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db
UTC = dt.UTC
R1 = "3c90c3cc-0d44-4b50-8888-8dd25736052a"

# A CRM's own export of movements: Spanish headers, semicolons, comma decimals, local dates.
MOVIMIENTOS = (
    "Cliente;Recompensa;Movimiento;Puntos;Fecha;Tienda;Pedido;Valor compra;Productos\n"
    f"C-001;{R1};Acumulación;1.234,50;07/11/2023 00:31;T-9;P-77;1.500,25;"
    '"[{""sku"": ""A"", ""amount"": 2}]"\n'
    f"C-001;{R1};Canje;-34,5;08/11/2023 10:00;;;;\n"
).encode()
MAPPING = {
    "kind": "transactions",
    "fields": {
        "customer_id": "Cliente",
        "reward_id": "Recompensa",
        "type": {
            "column": "Movimiento",
            "values": {"Acumulación": "ACCUMULATION", "Canje": "REDEMPTION"},
        },
        "amount": {"column": "Puntos", "decimal_separator": ",", "thousands_separator": "."},
        "issued_at": {"column": "Fecha", "date_format": "%d/%m/%Y %H:%M"},
        "store_id": "Tienda",
        "event.order.purchase_id": "Pedido",
        "event.order.value": {
            "column": "Valor compra",
            "decimal_separator": ",",
            "thousands_separator": ".",
        },
        "event.order.products": "Productos",
    },
    "timezone": "America/Bogota",
    "unmapped": "refuse",
}


def assert_movimientos_staged(batch) -> None:
    earned, spent = StagedTransaction.objects.filter(batch=batch).order_by("source_row")
    assert (earned.type, earned.amount, earned.store_id) == (
        "ACCUMULATION",
        Decimal("1234.5"),
        "T-9",
    )
    assert earned.issued_at == dt.datetime(2023, 11, 7, 5, 31, tzinfo=UTC)
    assert earned.event == {
        "order": {"purchase_id": "P-77", "value": 1500.25, "products": [{"sku": "A", "amount": 2}]}
    }
    assert (spent.type, spent.amount, spent.event) == ("REDEMPTION", Decimal("-34.5"), None)


@pytest.fixture
def client_in(client, importer):
    client.force_login(importer)
    return client


def test_the_admin_previews_then_stages_both_kinds(client_in, batch, samples):
    stage(client_in, batch, "customers", "customers.csv", (samples / "customers.csv").read_bytes())
    for kind, count in (("transactions", 27), ("events", 5)):
        content = (samples / f"{kind}.csv").read_bytes()
        shown = preview(client_in, batch, kind, f"{kind}.csv", content)
        assert shown.context["result"].staged == {kind: count}
        assert not getattr(batch, kind).exists()  # a preview stages nothing

        response = confirm(client_in, shown)

        assert response.status_code == 302
        page = client_in.get(response.url).content.decode()
        assert f"Staged {count} {kind} from {kind}.csv" in page
    batch.refresh_from_db()
    assert (batch.transaction_count, batch.event_count) == (27, 5)
    assert batch.transactions.filter(customer__isnull=False).count() == 27


def test_the_admin_preview_names_a_bad_cell(client_in, batch):
    content = b"customer_id,issued_at,order.value\nann,yesterday,5\n"

    response = preview(client_in, batch, "events", "e.csv", content)

    assert response.context.get("confirm_form") is None
    [line] = response.context["result"].messages()
    assert line.startswith("e.csv: row 2 (id “ann”), column “issued_at”: “yesterday” is not")


def test_the_admin_mapping_step_maps_a_foreign_transactions_file(client_in, batch):
    step = preview(client_in, batch, "transactions", "movimientos.csv", MOVIMIENTOS)

    assert step.templates[0].name == "admin/customers/stagingbatch/mapping.html"
    form = step.context["form"]
    assert form["col__customer_id"].value() == "Cliente"
    assert form["col__type"].value() == "Movimiento"
    assert form["col__amount"].value() == "Puntos"
    assert form[value_field("type", "Acumulación")].value() == "ACCUMULATION"
    data = {
        name: form[name].value() for name in form.fields if form[name].value() not in (None, False)
    }
    data.update(
        {
            "action": "preview",
            "col__event.order.purchase_id": "Pedido",
            "col__event.order.value": "Valor compra",
            "dec__event.order.value": ",",
            "thou__event.order.value": ".",
            "col__event.order.products": "Productos",
            "col__store_id": "Tienda",
            "fmt__issued_at": "%d/%m/%Y %H:%M",
            "tz__issued_at": "America/Bogota",
            value_field("type", "Canje"): "REDEMPTION",
        }
    )
    data.pop("profile", None)

    shown = client_in.post(reverse("admin:customers_stagingbatch_import_mapping"), data)

    assert shown.context["result"].messages() == []
    assert confirm(client_in, shown).status_code == 302
    assert_movimientos_staged(batch)


def test_a_mapping_profile_reads_a_foreign_transactions_file(batch, importer):
    profile = MappingProfile.objects.create(
        name="movimientos", kind="transactions", document=MAPPING
    )

    result = batch_stage_file(
        batch=batch,
        kind="transactions",
        file_name="movimientos.csv",
        content=MOVIMIENTOS,
        user=importer,
        mapping=profile,
    )

    assert result.messages() == []
    assert_movimientos_staged(batch)
    profile.refresh_from_db()
    assert profile.header_signature


def test_a_mapping_reports_a_bad_cell_by_the_files_own_column(batch, importer):
    content = MOVIMIENTOS.replace(b"1.234,50", b"1,234.50")

    result = batch_stage_file(
        batch=batch,
        kind="transactions",
        file_name="movimientos.csv",
        content=content,
        user=importer,
        mapping=MAPPING,
    )

    [line] = result.messages()
    assert line == (
        "movimientos.csv: row 2 (id “C-001”), column “Puntos”: “1,234.50” is not a number "
        "written like 1.234,50"
    )
    assert not StagedTransaction.objects.exists()


def test_headers_that_certainly_mean_the_fields_need_no_mapping(batch, importer):
    content = (
        b"Cliente,Tipo,Cumplido,Fecha,Pedido,Medio de pago\n"
        b"C-1,PURCHASE,si,2024-01-01,P-1,efectivo\n"
    )

    result = batch_stage_file(
        batch=batch, kind="events", file_name="e.csv", content=content, user=importer
    )

    assert result.messages() == []
    event = StagedEvent.objects.get(batch=batch)
    assert (event.customer_legacy_id, event.type, event.fulfilled) == ("C-1", "PURCHASE", True)
    # Without a value map, a code Masivo does not know is staged as written, for validation.
    assert event.order == {"purchase_id": "P-1", "payment_method": "efectivo"}


def test_mapping_documents_and_profiles_take_the_history_kinds():
    assert mapping_parse(MAPPING, kind="transactions").kind == "transactions"
    events = {"kind": "events", "fields": {"customer_id": "C", "fulfilled": {"column": "F"}}}
    assert mapping_parse(events).rules["fulfilled"].target.choices() == ["true", "false"]
    kinds = [value for value, _label in MappingProfile._meta.get_field("kind").choices]
    assert kinds[-2:] == ["transactions", "events"]


def run(*args) -> str:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue() + err.getvalue()


def test_stage_file_stages_both_kinds_and_a_mapped_file(importer, samples, tmp_path):
    for kind in ("customers", "transactions", "events"):
        out = run("stage_file", "cli", kind, str(samples / f"{kind}.csv"), "--user", "importer")
    assert "Staged 5 events from events.csv" in out
    movimientos = tmp_path / "movimientos.csv"
    movimientos.write_bytes(MOVIMIENTOS)
    mapping = tmp_path / "movimientos.mapping.json"
    mapping.write_text(json.dumps(MAPPING))

    out = run(
        "stage_file", "mapped", "transactions", str(movimientos), "--user", "importer",
        "--mapping", str(mapping),
    )  # fmt: skip

    assert "Staged 2 transactions from movimientos.csv" in out
    cli = StagingBatch.objects.get(name="cli")
    assert (cli.transaction_count, cli.event_count) == (27, 5)
    assert_movimientos_staged(StagingBatch.objects.get(name="mapped"))


def test_stage_file_prints_each_bad_row_and_exits_non_zero(importer, tmp_path):
    path = tmp_path / "e.csv"
    path.write_bytes(b"customer_id,fulfilled\nann,perhaps\n")

    with pytest.raises(CommandError, match=r"e.csv has 1 problem\(s\); nothing was staged."):
        run("stage_file", "cli", "events", str(path), "--user", "importer")


def test_the_api_stages_both_kinds_and_counts_them(importer, batch, samples):
    api = APIClient()
    api.force_authenticate(importer)
    url = reverse("api:batch-files", args=[batch.pk])
    CustomerFactory(batch=batch, legacy_id="legacy-000123")

    for kind, count in (("transactions", 27), ("events", 5)):
        with (samples / f"{kind}.csv").open("rb") as file:
            response = api.post(url, {"kind": kind, "file": file}, format="multipart")
        assert response.status_code == 201, response.content
        assert response.json()["staged"] == {kind: count}
    body = api.get(reverse("api:batch-detail", args=[batch.pk])).json()
    assert (body["transaction_count"], body["event_count"]) == (27, 5)
    assert batch.transactions.filter(customer__isnull=False).count() == 2


def test_the_api_refuses_a_bad_row_by_row_and_column(importer, batch):
    api = APIClient()
    api.force_authenticate(importer)
    content = b'customer_id,amount\nann,"12,5"\n'

    response = api.post(
        reverse("api:batch-files", args=[batch.pk]),
        {"kind": "transactions", "file": SimpleUploadedFile("t.csv", content)},
        format="multipart",
    )

    assert response.status_code == 400
    [problem] = response.json()["problems"]
    assert (problem["row"], problem["column"]) == (2, "amount")


@pytest.fixture
def eager_tasks(settings):
    celery_app.loader.import_default_modules()
    celery_app.conf.task_always_eager = True
    settings.MIGRATION_BACKGROUND_IMPORT_ROWS = 5
    yield
    celery_app.conf.task_always_eager = False


def test_a_big_file_is_staged_in_the_background(
    client_in, batch, eager_tasks, django_capture_on_commit_callbacks
):
    rows = [["customer_id", "type", "amount", "issued_at", "event.type", "event.order.value"]]
    rows += [[f"c{i}", "ACCUMULATION", f"{i}.5", "2024-01-01", "PURCHASE", i] for i in range(40)]
    with django_capture_on_commit_callbacks(execute=True):
        response = preview(client_in, batch, "transactions", "big.xlsx", to_xlsx(rows))
    assert response.status_code == 302
    upload = StagingUpload.objects.get()
    assert (upload.status, upload.kind, upload.row_count) == ("ready", "transactions", 40)

    url = reverse("admin:customers_stagingbatch_upload", args=[batch.pk, upload.pk])
    with django_capture_on_commit_callbacks(execute=True):
        client_in.post(url)

    upload.refresh_from_db()
    assert (upload.status, upload.staged) == ("staged", {"transactions": 40})
    batch.refresh_from_db()
    assert batch.transaction_count == 40
    last = StagedTransaction.objects.get(batch=batch, source_row=41)
    assert (last.amount, last.event) == (
        Decimal("39.5"),
        {"type": "PURCHASE", "order": {"value": 39}},
    )


def test_a_batch_page_shows_the_history_counts(client_in, batch):
    batch_stage_file(
        batch=batch,
        kind="events",
        file_name="e.csv",
        content=to_csv([["customer_id", "type"], ["a", "PURCHASE"], ["b", "PURCHASE"]]),
        user=UserFactory(),
    )

    page = client_in.get(reverse("admin:customers_stagingbatch_change", args=[batch.pk]))

    assert page.context["adminform"].form.instance.event_count == 2
    assert "Events" in page.content.decode()


def test_the_api_saves_a_transactions_profile_and_stages_a_file_with_it(importer, batch):
    api = APIClient()
    api.force_authenticate(importer)

    created = api.post(
        reverse("api:mapping-list"), {"name": "movimientos", "document": MAPPING}, format="json"
    )
    assert created.status_code == 201, created.json()
    assert created.json()["kind"] == "transactions"
    response = api.post(
        reverse("api:batch-files", args=[batch.pk]),
        {
            "kind": "transactions",
            "file": SimpleUploadedFile("m.csv", MOVIMIENTOS),
            "mapping": "movimientos",
        },
        format="multipart",
    )

    assert response.status_code == 201, response.content
    assert response.json()["staged"] == {"transactions": 2}
    assert_movimientos_staged(batch)
