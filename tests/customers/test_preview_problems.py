"""Every problem a file alone can reveal shows at preview, by row and id, with validation's
own rules and messages; the operator chooses to refuse the file or to stage it and flag."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from rest_framework.test import APIClient

from config.celery import app as celery_app
from customers.contract.messages import ERR_EMAIL, ERR_REQUIRED
from customers.models import CustomerProblem, OnProblems, Outcome, StagedCustomer, StagingUpload
from customers.resources import StagingResult, base
from customers.resources.checks import EntryCheck
from customers.resources.kinds import DeviceResource, MetricResource
from customers.services import batch_validate
from customers.services.problems import ERR_ALREADY_SENT, ERR_DUPLICATE_EMAIL
from customers.staging import batch_stage_file
from tests.customers.importing import CONFIRM_URL, preview, to_csv
from tests.factories import BatchFactory, CustomerFactory

pytestmark = pytest.mark.django_db

HEADER = ["id", "name", "email", "gender", "registration_date"]
GOOD = ["C-001", "Ann", "ann@example.com", "FEMALE", "2023-11-07"]
SINCE = {"registration_date": "2023-11-07T05:31:56Z"}


def _customers(*rows: list[str]) -> bytes:
    return to_csv([HEADER, *rows])


def _stage(batch, user, content: bytes, *, kind="customers", dry_run=True, **options):
    return batch_stage_file(
        batch=batch,
        kind=kind,
        file_name=f"{kind}.csv",
        content=content,
        user=user,
        dry_run=dry_run,
        **options,
    )


def _where(result) -> list[tuple]:
    return [(p.row, p.record, p.column, p.is_flaggable) for p in result.problems]


# --- at dry run: each problem with its row and id, nothing staged ------------------------------
def test_bad_email_shows_at_dry_run_with_its_row_and_id(batch, importer):
    content = _customers(GOOD, ["C-002", "Bob", "bob-at-example", "MALE", "2023-11-07"])

    result = _stage(batch, importer, content)

    assert _where(result) == [(3, "C-002", "email", True)]
    assert result.problems[0].message == str(ERR_EMAIL % {"value": "bob-at-example"})
    assert result.messages() == [
        "customers.csv: row 3 (id “C-002”), column “email”: "
        + str(ERR_EMAIL % {"value": "bob-at-example"})
    ]
    assert result.has_errors()
    assert result.staged == {}


def test_empty_required_name_shows_at_dry_run(batch, importer):
    result = _stage(batch, importer, _customers(["C-001", "", "ann@example.com", "", "2023-11-07"]))

    assert _where(result) == [(2, "C-001", "name", True)]
    assert result.problems[0].message == str(ERR_REQUIRED)
    assert result.has_errors()


def test_unknown_gender_shows_at_dry_run_and_is_unstorable(batch, importer):
    result = _stage(batch, importer, _customers(["C-001", "Ann", "ann@example.com", "X", ""]))

    # The parse widget refuses the gender; the row is not parsed further.
    assert _where(result) == [(2, "C-001", "gender", False)]
    assert result.has_unstorable_problems


def test_duplicate_email_in_any_case_shows_on_every_row_that_uses_it(batch, importer):
    content = _customers(
        GOOD,
        ["C-002", "Bob", "bob@example.com", "", "2023-11-07"],
        ["C-003", "Ann B", "ANN@Example.com", "", "2023-11-07"],
    )

    result = _stage(batch, importer, content)

    assert _where(result) == [(2, "C-001", "email", True), (4, "C-003", "email", True)]
    assert [p.message for p in result.problems] == [
        str(ERR_DUPLICATE_EMAIL % {"email": "ann@example.com", "others": "“C-003”"}),
        str(ERR_DUPLICATE_EMAIL % {"email": "ANN@Example.com", "others": "“C-001”"}),
    ]


def test_duplicate_id_shows_at_dry_run(batch, importer):
    result = _stage(batch, importer, _customers(GOOD, GOOD))

    assert _where(result) == [(3, "C-001", "id", False)]
    assert "first at row 2" in result.problems[0].message


def test_child_of_an_unknown_customer_shows_with_its_customer_id(batch, importer):
    CustomerFactory(batch=batch, legacy_id="C-001")
    content = to_csv(
        [
            ["customer_id", "reward_id", "amount"],
            ["C-001", "3c90c3cc-0d44-4b50-8888-8dd25736052a", "10"],
            ["C-404", "3c90c3cc-0d44-4b50-8888-8dd25736052a", "10"],
        ]
    )

    result = _stage(batch, importer, content, kind="balances")

    assert _where(result) == [(3, "C-404", "customer_id", False)]
    assert "row 3 (id “C-404”), column “customer_id”" in result.messages()[0]


def test_a_cell_a_widget_refuses_names_the_childs_customer_id(batch, importer):
    CustomerFactory(batch=batch, legacy_id="C-001")
    content = to_csv([["customer_id", "device_token", "platform"], ["C-001", "tok", "fax"]])

    result = _stage(batch, importer, content, kind="devices")

    assert _where(result) == [(2, "C-001", "platform", False)]


def test_id_already_staged_in_the_batch_shows(batch, importer):
    CustomerFactory(batch=batch, legacy_id="C-001")

    result = _stage(batch, importer, _customers(GOOD))

    assert _where(result) == [(2, "C-001", "id", False)]


def test_id_already_sent_by_another_batch_shows_with_validations_message(batch, importer):
    earlier = BatchFactory(name="winter")
    CustomerFactory(batch=earlier, legacy_id="C-001", outcome=Outcome.SENT)

    result = _stage(batch, importer, _customers(GOOD))

    assert _where(result) == [(2, "C-001", "id", True)]
    assert result.problems[0].message == str(ERR_ALREADY_SENT % {"batch": "winter"})
    assert not StagedCustomer.objects.filter(batch=batch).exists()


def test_a_customer_sent_elsewhere_counts_for_no_duplicate_email(batch, importer):
    CustomerFactory(batch=BatchFactory(), legacy_id="C-001", outcome=Outcome.SENT)
    content = _customers(GOOD, ["C-002", "Ann", "ann@example.com", "", "2023-11-07"])

    result = _stage(batch, importer, content)

    assert _where(result) == [(2, "C-001", "id", True)]


def test_nothing_is_staged_by_default_even_when_the_problem_is_found_after_writing(
    batch, importer, monkeypatch
):
    # Written in blocks of two rows: the repeated email is told once every row is read.
    monkeypatch.setattr(base, "WRITE_BLOCK", 2)
    content = _customers(
        GOOD,
        ["C-002", "Bob", "bob@example.com", "", "2023-11-07"],
        ["C-003", "Cy", "cy@example.com", "", "2023-11-07"],
        ["C-004", "Ann", "ann@example.com", "", "2023-11-07"],
    )

    result = _stage(batch, importer, content, dry_run=False)

    assert [p.row for p in result.problems] == [2, 5]
    assert result.staged == {}
    assert not StagedCustomer.objects.filter(batch=batch).exists()


def test_a_nested_document_shows_repeated_emails_and_customers_sent_elsewhere(batch, importer):
    CustomerFactory(batch=BatchFactory(name="winter"), legacy_id="C-009", outcome=Outcome.SENT)
    document = {
        "customers": [
            {"id": "C-001", "name": "Ann", "email": "ann@example.com", **SINCE},
            {"id": "C-002", "name": "Ann B", "email": "ANN@example.com", **SINCE},
            {"id": "C-009", "name": "Dee", "email": "dee@example.com", **SINCE},
        ]
    }
    content = json.dumps(document).encode()

    result = batch_stage_file(
        batch=batch,
        kind="nested",
        file_name="body.json",
        content=content,
        user=importer,
        dry_run=True,
    )

    assert _where(result) == [
        (1, "C-001", "email", True),
        (2, "C-002", "email", True),
        (3, "C-009", "id", True),
    ]
    assert result.has_errors()


def test_child_entries_are_checked_by_the_contract_and_named_by_the_files_column(batch):
    result = StagingResult(kind="devices", batch=batch)
    devices = EntryCheck("devices", DeviceResource.fields.values())
    metrics = EntryCheck("metrics", MetricResource.fields.values())

    devices.row_check(
        2, {"device_token": "", "platform": "fax", "os_version": "x" * 65}, "C-1", result
    )
    metrics.row_check(3, {"period_from": "not a date-time"}, "C-2", result)

    # In the order validation reports them: the fields given, then the missing ones.
    assert _where(result) == [
        (2, "C-1", "platform", True),
        (2, "C-1", "os_version", True),
        (2, "C-1", "device_token", True),
        (3, "C-2", "from", True),
    ]


def test_a_big_group_sharing_one_email_names_a_few_and_counts_the_rest(batch, importer):
    rows = [[f"C-{n:05d}", "N", "same@example.com", "", "2023-11-07"] for n in range(3000)]

    result = _stage(batch, importer, _customers(*rows))

    assert result.problem_count == 3000
    assert result.problems[0].message == str(
        ERR_DUPLICATE_EMAIL
        % {
            "email": "same@example.com",
            "others": "“C-00001”, “C-00002”, “C-00003”, “C-00004”, “C-00005” and 2994 more",
        }
    )


# --- one rule set: validation says the same -----------------------------------------------------
def test_flag_stages_a_file_with_a_bad_email_and_validation_records_it(batch, importer):
    content = _customers(GOOD, ["C-002", "Bob", "bob-at-example", "MALE", "2023-11-07"])
    checked = _stage(batch, importer, content, on_problems=OnProblems.FLAG)

    result = _stage(batch, importer, content, dry_run=False, on_problems=OnProblems.FLAG)

    assert not checked.has_errors()
    assert checked.staged == {"customers": 2}
    assert not result.has_errors()
    assert result.staged == {"customers": 2}
    batch_validate(batch=batch, user=importer)
    problem = CustomerProblem.objects.get(batch=batch)
    assert (problem.legacy_id, problem.field) == ("C-002", "email")
    assert problem.message == result.problems[0].message
    assert not StagedCustomer.objects.get(batch=batch, legacy_id="C-002").is_valid


def test_validation_finds_what_the_preview_listed(batch, importer):
    CustomerFactory(batch=BatchFactory(name="winter"), legacy_id="C-009", outcome=Outcome.SENT)
    content = _customers(
        GOOD,
        ["C-002", "", "bob@example.com", "", "2023-11-07"],
        ["C-003", "Ann B", "Ann@example.com", "", "2023-11-07"],
        ["C-009", "Dee", "dee@example.com", "", "2023-11-07"],
    )

    result = _stage(batch, importer, content, dry_run=False, on_problems=OnProblems.FLAG)
    batch_validate(batch=batch, user=importer)

    found = CustomerProblem.objects.filter(batch=batch).values_list("legacy_id", "message")
    assert sorted(found) == sorted((p.record, p.message) for p in result.problems)


def test_flag_still_refuses_a_file_with_an_unstorable_problem(batch, importer):
    content = _customers(
        ["C-001", "Ann", "bad-email", "", "2023-11-07"],
        ["C-002", "Bob", "bob@example.com", "", "someday"],
    )

    result = _stage(batch, importer, content, dry_run=False, on_problems=OnProblems.FLAG)

    assert result.has_errors()
    assert [(p.row, p.is_flaggable) for p in result.problems] == [(2, True), (3, False)]
    assert not StagedCustomer.objects.filter(batch=batch).exists()


def test_an_unknown_choice_for_problems_is_refused(batch, importer):
    with pytest.raises(ValueError, match="on_problems"):
        _stage(batch, importer, _customers(GOOD), on_problems="ignore")


# --- the doors: command, API, admin, background uploads -----------------------------------------
def _command(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("stage_file", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_stage_file_refuses_by_default_and_stages_with_on_problems_flag(batch, importer, tmp_path):
    path = tmp_path / "c.csv"
    path.write_bytes(_customers(["C-001", "Ann", "bad-email", "", "2023-11-07"]))
    args = (batch.name, "customers", str(path), "--user", importer.username)

    with pytest.raises(CommandError, match="1 problem"):
        _command(*args)
    assert not StagedCustomer.objects.filter(batch=batch).exists()

    out, err = _command(*args, "--on-problems", "flag")

    assert "Staged 1 customers" in out
    assert "row 2 (id “C-001”), column “email”" in err
    assert StagedCustomer.objects.filter(batch=batch).count() == 1


def test_stage_file_dry_run_prints_each_problem_with_its_row_and_id(batch, importer, tmp_path):
    path = tmp_path / "c.csv"
    path.write_bytes(_customers(GOOD, ["C-002", "", "x@example.com", "", "2023-11-07"]))
    err = StringIO()

    with pytest.raises(CommandError):
        call_command(
            "stage_file",
            batch.name,
            "customers",
            str(path),
            "--user",
            importer.username,
            "--dry-run",
            stderr=err,
        )

    assert "c.csv: row 3 (id “C-002”), column “name”" in err.getvalue()
    assert "--on-problems flag" in err.getvalue()


def _api_upload(user, batch, content: bytes, **extra):
    client = APIClient()
    client.force_authenticate(user)
    return client.post(
        reverse("api:batch-files", args=[batch.pk]),
        {"kind": "customers", "file": SimpleUploadedFile("c.csv", content), **extra},
        format="multipart",
    )


def test_api_on_problems_flag_stages_and_lists_the_problems(importer, batch):
    content = _customers(GOOD, ["C-002", "Bob", "bob-at-example", "", "2023-11-07"])

    refused = _api_upload(importer, batch, content)
    staged = _api_upload(importer, batch, content, on_problems="flag")

    assert refused.status_code == 400
    [problem] = refused.json()["problems"]
    assert problem | {"message": ""} == {
        "row": 3,
        "column": "email",
        "record": "C-002",
        "is_flaggable": True,
        "message": "",
    }
    assert staged.status_code == 201, staged.content
    assert staged.json()["staged"] == {"customers": 2}
    assert [p["record"] for p in staged.json()["problems"]] == ["C-002"]


def test_api_refuses_an_unknown_on_problems(importer, batch):
    response = _api_upload(importer, batch, _customers(GOOD), on_problems="ignore")

    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"on_problems"}


def test_api_schema_documents_on_problems(client, importer):
    client.force_login(importer)
    schema = client.get(reverse("api:schema"), {"format": "json"}).json()

    upload = schema["components"]["schemas"]["FileUploadRequest"]["properties"]["on_problems"]
    assert "flag" in upload["description"]
    names = {ref.rsplit("/", 1)[-1] for ref in _refs(upload)}
    enums = [schema["components"]["schemas"][name].get("enum") for name in names]
    assert ["refuse", "flag"] in enums


def _refs(node) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def _confirm(client, response, on_problems: str | None):
    form = response.context["confirm_form"]
    data = {name: form.initial.get(name, "") for name in form.fields}
    data["on_problems"] = on_problems or ""
    return client.post(reverse(CONFIRM_URL), data)


def test_admin_preview_offers_the_choice_with_stage_nothing_chosen(client, importer, batch):
    client.force_login(importer)
    content = _customers(GOOD, ["C-002", "Bob", "bob-at-example", "", "2023-11-07"])

    response = preview(client, batch, "customers", "c.csv", content)

    page = response.content.decode()
    assert response.context["confirm_form"] is not None
    assert "row 3 (id “C-002”), column “email”" in page
    assert 'value="refuse" id="id_on_problems_0" checked' in page
    assert 'value="flag" id="id_on_problems_1" checked' not in page
    assert not StagedCustomer.objects.filter(batch=batch).exists()


@pytest.mark.parametrize(
    ("choice", "staged"), [("flag", 2), ("refuse", 0), (None, 0)], ids=["flag", "refuse", "none"]
)
def test_admin_confirm_does_as_the_operator_chose(client, importer, batch, choice, staged):
    client.force_login(importer)
    content = _customers(GOOD, ["C-002", "Bob", "bob-at-example", "", "2023-11-07"])

    response = _confirm(client, preview(client, batch, "customers", "c.csv", content), choice)

    assert response.status_code == 302
    assert StagedCustomer.objects.filter(batch=batch).count() == staged


def test_admin_preview_with_an_unstorable_problem_offers_only_the_refusal(client, importer, batch):
    client.force_login(importer)
    content = _customers(GOOD, ["C-002", "Bob", "bob-at-example", "NOPE", "2023-11-07"])

    response = preview(client, batch, "customers", "c.csv", content)

    assert response.context.get("confirm_form") is None
    assert 'name="on_problems"' not in response.content.decode()
    assert "The file cannot be staged" in response.content.decode()


@pytest.fixture
def eager_uploads(settings):
    settings.MIGRATION_BACKGROUND_IMPORT_ROWS = 2
    celery_app.loader.import_default_modules()
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def test_background_upload_with_flaggable_problems_is_ready_and_stages_as_chosen(
    client, importer, batch, eager_uploads, django_capture_on_commit_callbacks
):
    client.force_login(importer)
    rows = [GOOD] + [[f"C-{n:03d}", f"N{n}", f"n{n}@example.com", "", "2023-11-07"] for n in (2, 3)]
    rows[2][2] = "n2-at-example"
    with django_capture_on_commit_callbacks(execute=True):
        preview(client, batch, "customers", "big.csv", _customers(*rows))
    upload = StagingUpload.objects.get()
    assert upload.status == StagingUpload.Status.READY
    assert len(upload.problems) == 1
    upload_url = reverse("admin:customers_stagingbatch_upload", args=[batch.pk, upload.pk])
    assert 'name="on_problems"' in client.get(upload_url).content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        client.post(upload_url, {"on_problems": "flag"})

    upload.refresh_from_db()
    assert (upload.status, upload.on_problems) == (StagingUpload.Status.STAGED, "flag")
    assert StagedCustomer.objects.filter(batch=batch).count() == 3
