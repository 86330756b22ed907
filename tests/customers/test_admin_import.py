import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from customers.models import (
    StagedBalance,
    StagedCustomer,
    StagedDevice,
    StagedMetric,
    StagingBatch,
)
from tests.customers.importing import (
    csv_rows,
    preview,
    stage,
    stage_sample,
    to_csv,
    to_json_rows,
    to_xlsx,
)
from tests.factories import BatchFactory, UserFactory

pytestmark = pytest.mark.django_db
UTC = dt.UTC


@pytest.fixture
def client_in(client, importer):
    client.force_login(importer)
    return client


def _problems(response) -> list[str]:
    return response.context["result"].messages()


def _stage_all_samples(client, batch, samples):
    for kind in ("customers", "balances", "devices", "metrics"):
        response = stage_sample(client, batch, samples, kind)
        assert response.status_code == 302, response.content[:2000]


def test_sample_files_stage_with_counts_and_values(client_in, batch, samples):
    _stage_all_samples(client_in, batch, samples)

    batch.refresh_from_db()
    assert (batch.customer_count, batch.balance_count, batch.device_count, batch.metric_count) == (
        12,
        17,
        7,
        17,
    )
    assert batch.customers.count() == 12
    assert batch.balances.count() == 17
    john = StagedCustomer.objects.get(batch=batch, legacy_id="legacy-000123")
    assert john.name == "John Smith"
    assert john.gender == "MALE"
    assert john.dob == dt.datetime(1990, 4, 1, tzinfo=UTC)
    assert john.registration_date == dt.datetime(2023, 11, 7, 5, 31, 56, tzinfo=UTC)
    assert john.metadata == {"source": "legacy-crm"}
    assert john.metrics_updated_at == dt.datetime(2025, 2, 21, 14, 5, 42, tzinfo=UTC)
    balance = john.balances.get()
    assert balance.reward_id == uuid.UUID("3c90c3cc-0d44-4b50-8888-8dd25736052a")
    assert balance.amount == Decimal("123")
    assert balance.store_id == "store-9"
    device = john.devices.get()
    assert (device.device_token, device.platform, device.model, device.os_version) == (
        "fcm:abc",
        "ios",
        "iPhone15,2",
        "17.1",
    )
    metric = john.metrics.get(period="lifetime")
    assert metric.spend_total == Decimal("50.2")
    assert metric.number_of_purchases == 10
    assert metric.tier_id == uuid.UUID("3c90c3cc-0d44-4b50-8888-8dd25736052a")
    # Legacy ids are text: leading zeros stay.
    assert StagedCustomer.objects.filter(batch=batch, legacy_id="000777").exists()
    assert batch.last_imported_by.username == "importer"


def test_confirm_redirects_to_the_batch_with_a_summary(client_in, batch, samples):
    response = stage_sample(client_in, batch, samples, "customers")
    assert response.url == reverse("admin:customers_stagingbatch_change", args=[batch.pk])
    page = client_in.get(response.url)
    assert "Staged 12 customers from customers.csv" in page.content.decode()


def test_preview_shows_counts_and_a_sample_and_stages_nothing(client_in, batch, samples):
    response = preview(
        client_in, batch, "customers", "customers.csv", (samples / "customers.csv").read_bytes()
    )
    result = response.context["result"]
    assert result.staged == {"customers": 12}
    assert len(result.sample_rows) == 12
    assert response.context.get("confirm_form") is not None
    assert StagedCustomer.objects.count() == 0


@pytest.mark.parametrize("fmt", ["xlsx", "tsv", "json"])
def test_other_formats_stage_the_same_values(client_in, batch, samples, fmt):
    rows = csv_rows(samples / "customers.csv")
    content = {
        "xlsx": lambda: to_xlsx(rows),
        "tsv": lambda: to_csv(rows, delimiter="\t"),
        "json": lambda: to_json_rows(rows),
    }[fmt]()
    response = stage(client_in, batch, "customers", f"customers.{fmt}", content)
    assert response.status_code == 302
    john = StagedCustomer.objects.get(batch=batch, legacy_id="legacy-000123")
    assert john.registration_date == dt.datetime(2023, 11, 7, 5, 31, 56, tzinfo=UTC)
    assert john.metadata == {"source": "legacy-crm"}
    assert StagedCustomer.objects.filter(batch=batch, legacy_id="000777").exists()


def test_usual_date_forms_become_utc(client_in, samples):
    user = UserFactory(username="tz-owner")
    bogota = BatchFactory(name="bogota", created_by=user, time_zone="America/Bogota")
    rows = [
        ["id", "name", "email", "registration_date", "dob", "metrics_updated_at"],
        [
            "a",
            "A",
            "a@example.com",
            "2023-11-07T05:31:56Z",
            "1990-04-01",
            "2023-11-07T00:31:56-05:00",
        ],
        ["b", "B", "b@example.com", "2023-11-07 05:31:56", "1990-04-01T00:00:00Z", ""],
    ]
    stage(client_in, bogota, "customers", "dates.csv", to_csv(rows))
    a = StagedCustomer.objects.get(batch=bogota, legacy_id="a")
    b = StagedCustomer.objects.get(batch=bogota, legacy_id="b")
    assert a.registration_date == dt.datetime(2023, 11, 7, 5, 31, 56, tzinfo=UTC)
    assert a.dob == dt.datetime(1990, 4, 1, tzinfo=UTC)  # a plain date is midnight UTC
    assert a.metrics_updated_at == dt.datetime(2023, 11, 7, 5, 31, 56, tzinfo=UTC)
    # No offset: read in the batch's time zone (Bogotá is UTC-5).
    assert b.registration_date == dt.datetime(2023, 11, 7, 10, 31, 56, tzinfo=UTC)


def test_decimals_keep_their_precision(client_in, batch, samples):
    stage_sample(client_in, batch, samples, "customers")
    rows = [
        ["customer_id", "reward_id", "amount"],
        ["legacy-000123", "3c90c3cc-0d44-4b50-8888-8dd25736052a", "50.20"],
        ["000777", "3c90c3cc-0d44-4b50-8888-8dd25736052a", "123456789.123456"],
    ]
    stage(client_in, batch, "balances", "balances.csv", to_csv(rows))
    amounts = sorted(StagedBalance.objects.filter(batch=batch).values_list("amount", flat=True))
    assert amounts == [Decimal("50.2"), Decimal("123456789.123456")]


BAD_FILES = [
    pytest.param(
        "customers",
        [["id", "name", "dob"], ["c1", "Ann", "1990-01-01"], ["c2", "Bob", "31/12/2023"]],
        "row 3 (id “c2”), column “dob”: “31/12/2023” is not a date-time such as",
        id="wrong-date",
    ),
    pytest.param(
        "customers",
        [["id", "gender"], ["c1", "MALE"], ["c2", "robot"]],
        "row 3 (id “c2”), column “gender”: “robot” is not one of MALE, FEMALE, OTHER",
        id="unknown-gender",
    ),
    pytest.param(
        "customers",
        [["id", "name"], ["c1", "Ann"], ["c2", "Bob"], ["c1", "Ann again"]],
        "row 4 (id “c1”), column “id”: “c1” appears again in this file (first at row 2)",
        id="duplicate-legacy-id",
    ),
    pytest.param(
        "balances",
        [
            ["customer_id", "reward_id", "amount"],
            ["legacy-000123", "3c90c3cc-0d44-4b50-8888-8dd25736052a", "10"],
            ["ghost-1", "3c90c3cc-0d44-4b50-8888-8dd25736052a", "10"],
        ],
        "row 3 (id “ghost-1”), column “customer_id”: no customer with id “ghost-1” is staged",
        id="balance-of-missing-customer",
    ),
    pytest.param(
        "balances",
        [
            ["customer_id", "reward_id", "amount"],
            ["legacy-000123", "3c90c3cc-0d44-4b50-8888-8dd25736052a", "1.234,56"],
        ],
        "row 2 (id “legacy-000123”), column “amount”: “1.234,56” is not a number",
        id="balance-with-comma-decimal",
    ),
    pytest.param(
        "devices",
        [
            ["customer_id", "device_token", "platform"],
            ["legacy-000123", "fcm:1", "ios"],
            ["legacy-000123", "fcm:2", "blackberry"],
        ],
        "row 3 (id “legacy-000123”), column “platform”: “blackberry” is not one of ios, android",
        id="device-unknown-platform",
    ),
    pytest.param(
        "devices",
        [["customer_id", "device_token"], ["nobody", "fcm:1"]],
        "row 2 (id “nobody”), column “customer_id”: no customer with id “nobody”",
        id="device-of-missing-customer",
    ),
    pytest.param(
        "metrics",
        [
            ["customer_id", "period", "number_of_purchases"],
            ["legacy-000123", "lifetime", "3"],
            ["legacy-000123", "lifetime", "4"],
        ],
        "row 3 (id “legacy-000123”), column “period”: “lifetime” appears again in this file",
        id="metric-period-twice",
    ),
    pytest.param(
        "metrics",
        [["customer_id", "period", "number_of_purchases"], ["legacy-000123", "lifetime", "-2"]],
        "row 2 (id “legacy-000123”), column “number_of_purchases”: must be zero or more",
        id="metric-negative-purchases",
    ),
    pytest.param(
        "metrics",
        [["customer_id", "period"], ["legacy-000123", "forever"]],
        "row 2 (id “legacy-000123”), column “period”: “forever” is not one of lifetime",
        id="metric-unknown-period",
    ),
]


@pytest.mark.parametrize(("kind", "rows", "expected"), BAD_FILES)
def test_bad_file_names_row_and_column_and_stages_nothing(
    client_in, batch, samples, kind, rows, expected
):
    if kind != "customers":
        stage_sample(client_in, batch, samples, "customers")
    before = {
        model: model.objects.count()
        for model in (StagedCustomer, StagedBalance, StagedDevice, StagedMetric)
    }

    response = preview(client_in, batch, kind, f"{kind}.csv", to_csv(rows))

    assert response.context.get("confirm_form") is None
    problems = _problems(response)
    assert any(expected in p for p in problems), problems
    assert all(p.startswith(f"{kind}.csv: ") for p in problems)
    assert "Nothing was staged" in response.content.decode()
    after = {model: model.objects.count() for model in before}
    assert after == before


def test_one_bad_row_among_many_good_ones_stages_nothing(client_in, batch):
    rows = [["id", "name", "email", "registration_date"]]
    rows += [[f"c{i}", f"Name {i}", f"c{i}@example.com", "2023-01-01"] for i in range(500)]
    rows[321][3] = "yesterday"

    response = preview(client_in, batch, "customers", "customers.csv", to_csv(rows))

    assert _problems(response) == [
        "customers.csv: row 322 (id “c320”), column “registration_date”: “yesterday” is not a "
        "date-time "
        "such as 2023-11-07T05:31:56Z or 2023-11-07T00:31:56-05:00, nor a date such as "
        "2023-11-07."
    ]
    assert not StagedCustomer.objects.exists()


def test_id_already_staged_in_the_batch_is_refused(client_in, batch, samples):
    stage_sample(client_in, batch, samples, "customers")
    rows = [["id", "name", "email", "registration_date"], ["000777", "X", "x@x.com", "2023-11-07"]]
    response = preview(client_in, batch, "customers", "again.csv", to_csv(rows))
    assert _problems(response) == [
        "again.csv: row 2 (id “000777”), column “id”: a customer with id “000777” is already "
        "staged in this batch"
    ]


def test_unreadable_file_is_refused_with_its_reason(client_in, batch):
    response = preview(client_in, batch, "customers", "customers.csv", b"id,name\x00\n1,Ann\n")
    errors = response.context["form"].errors["import_file"]
    assert "NUL bytes" in errors[0]


@pytest.mark.parametrize("status", [StagingBatch.Status.APPROVED, StagingBatch.Status.SUBMITTED])
def test_import_into_a_batch_that_is_not_a_draft_is_refused(client_in, batch, samples, status):
    StagingBatch.objects.filter(pk=batch.pk).update(status=status)
    response = preview(
        client_in, batch, "customers", "customers.csv", (samples / "customers.csv").read_bytes()
    )
    assert "batch" in response.context["form"].errors
    assert not StagedCustomer.objects.exists()


def test_batch_approved_between_preview_and_confirm_stages_nothing(client_in, batch, samples):
    from tests.customers.importing import confirm

    response = preview(
        client_in, batch, "customers", "customers.csv", (samples / "customers.csv").read_bytes()
    )
    StagingBatch.objects.filter(pk=batch.pk).update(status=StagingBatch.Status.APPROVED)
    confirm(client_in, response)
    assert not StagedCustomer.objects.exists()


def test_import_into_a_validated_batch_sends_it_back_to_draft(client_in, batch, samples):
    StagingBatch.objects.filter(pk=batch.pk).update(status=StagingBatch.Status.VALIDATED)
    stage_sample(client_in, batch, samples, "customers")
    batch.refresh_from_db()
    assert batch.status == StagingBatch.Status.DRAFT


def test_user_without_import_permission_is_refused(client, batch, samples):
    viewer = UserFactory(username="viewer", perms=["customers.view_stagingbatch"])
    client.force_login(viewer)
    assert client.get(reverse("admin:customers_stagingbatch_import")).status_code == 403
    response = preview(
        client, batch, "customers", "customers.csv", (samples / "customers.csv").read_bytes()
    )
    assert response.status_code == 403
    assert not StagedCustomer.objects.exists()


def test_upload_bigger_than_the_limit_is_refused(client_in, batch, settings):
    settings.MIGRATION_UPLOAD_MAX_BYTES = 100
    response = preview(client_in, batch, "customers", "big.csv", b"id\n" + b"x\n" * 100)
    assert "files up to 100" in response.context["form"].errors["import_file"][0]


def _batch_snapshot(batch) -> dict:
    """Everything staged in a batch, keyed by legacy id, without database ids (nor the row
    of its file a customer came from: a nested body has none)."""
    drop = {"id", "batch", "batch_id", "customer", "customer_id", "source_row"}

    def rows(qs):
        return sorted(
            (tuple(sorted((k, str(v)) for k, v in row.items() if k not in drop)) for row in qs),
        )

    snapshot = {}
    for customer in batch.customers.all():
        snapshot[customer.legacy_id] = {
            "customer": rows(StagedCustomer.objects.filter(pk=customer.pk).values()),
            "balances": rows(customer.balances.values()),
            "devices": rows(customer.devices.values()),
            "metrics": rows(customer.metrics.values()),
        }
    return snapshot


def test_nested_json_stages_the_same_data_as_the_four_flat_files(client_in, importer, samples):
    flat = BatchFactory(name="flat", created_by=importer)
    nested = BatchFactory(name="nested", created_by=importer)
    _stage_all_samples(client_in, flat, samples)

    response = stage_sample(client_in, nested, samples, "nested")

    assert response.status_code == 302
    flat.refresh_from_db()
    nested.refresh_from_db()
    counts = ("customer_count", "balance_count", "device_count", "metric_count")
    assert [getattr(nested, c) for c in counts] == [getattr(flat, c) for c in counts]
    assert _batch_snapshot(nested) == _batch_snapshot(flat)


def test_nested_json_with_a_bad_customer_names_it_and_stages_nothing(client_in, batch):
    body = {
        "customers": [
            {
                "id": "c1",
                "name": "Ann",
                "email": "ann@example.com",
                "registration_date": "2023-01-01",
            },
            {
                "id": "c2",
                "name": "Bob",
                "email": "bob@example.com",
                "registration_date": "2023-01-01",
                "balance": [{"reward_id": "not-a-uuid", "amount": 5}],
            },
        ]
    }
    from tests.customers.importing import preview

    response = preview(client_in, batch, "nested", "body.json", json.dumps(body).encode())

    problems = _problems(response)
    assert len(problems) == 1
    assert problems[0].startswith("body.json: row 2 (id “c2”), column “balance[0].reward_id”")
    assert not StagedCustomer.objects.exists()


def test_flat_kind_given_a_nested_document_says_which_kind_to_choose(client_in, batch, samples):
    response = preview(
        client_in, batch, "customers", "nested.json", (samples / "nested.json").read_bytes()
    )
    assert "choose the kind “nested”" in _problems(response)[0]


def test_the_format_comes_from_the_file_name_when_none_is_chosen(client_in, batch, samples):
    content = (samples / "customers.csv").read_bytes()

    response = client_in.post(
        reverse("admin:customers_stagingbatch_import"),
        {
            "batch": batch.pk,
            "resource": 0,
            "format": "",
            "import_file": SimpleUploadedFile("customers.csv", content),
        },
    )

    assert response.context["confirm_form"] is not None
