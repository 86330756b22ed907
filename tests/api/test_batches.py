import json

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from rest_framework.authtoken.models import Token

from customers.models import CustomerProblem, StagedCustomer, StagingBatch
from customers.services import ERR_APPROVE_OWN_BATCH, ERR_TRANSITION
from migrations_jobs.api.permissions import ERR_MISSING_PERMISSION
from migrations_jobs.api.views.batches import ERR_BATCH_NOT_FOUND, ERR_NOT_STAGED_HERE
from tests.factories import BatchFactory, CustomerFactory

pytestmark = pytest.mark.django_db
Status = StagingBatch.Status
KINDS = ("customers", "balances", "devices", "metrics")


def url(name, *args):
    return reverse(f"api:{name}", args=args)


@pytest.fixture
def staged(as_user, importer, batch, upload_sample):
    """The sample batch staged through the API by the importer."""
    client = as_user(importer)
    for kind in KINDS:
        assert upload_sample(client, batch.pk, kind).status_code == 201
    return batch


@pytest.fixture
def validated(as_user, importer, staged):
    response = as_user(importer).post(url("batch-validate", staged.pk))
    assert response.json()["is_validated"], response.json()
    return staged


def assert_error(response, status: int, error: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"] == error
    assert isinstance(body["details"], str)
    assert body["details"]
    return body


# --- authentication --------------------------------------------------------------------------
def test_anonymous_request_is_refused_with_401(api, batch):
    body = assert_error(api.get(url("batch-list")), 401, "not_authenticated")
    assert set(body) == {"error", "details"}


def test_token_authenticates_a_script(api, importer, batch):
    token = Token.objects.create(user=importer)
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")

    response = api.get(url("batch-list"))

    assert response.status_code == 200
    assert [b["name"] for b in response.json()["results"]] == ["spring-migration"]


def test_wrong_token_is_refused_with_401(api, batch):
    api.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert_error(api.get(url("batch-list")), 401, "authentication_failed")


def test_session_authenticates_a_browser(client, importer, batch):
    client.force_login(importer)
    assert client.get(url("batch-detail", batch.pk)).json()["name"] == "spring-migration"


# --- list and create -----------------------------------------------------------------------
def test_list_filters_by_status(as_user, importer, batch):
    BatchFactory(name="other", created_by=importer, status=Status.VALIDATED)
    response = as_user(importer).get(url("batch-list"), {"status": "validated"})
    assert [b["name"] for b in response.json()["results"]] == ["other"]


def test_list_refuses_an_unknown_status_filter(as_user, importer):
    body = assert_error(
        as_user(importer).get(url("batch-list"), {"status": "lost"}), 400, "invalid"
    )
    assert set(body["fields"]) == {"status"}


def test_list_needs_the_view_permission(as_user, nobody):
    body = assert_error(as_user(nobody).get(url("batch-list")), 403, "permission_denied")
    assert body["details"] == ERR_MISSING_PERMISSION % {"permission": "customers.view_stagingbatch"}


def test_create_makes_a_draft_owned_by_the_caller(as_user, importer):
    response = as_user(importer).post(
        url("batch-list"), {"name": "autumn", "time_zone": "America/Bogota"}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["name"], body["status"], body["created_by"]) == ("autumn", "draft", "importer")
    assert StagingBatch.objects.get(pk=body["id"]).time_zone == "America/Bogota"


def test_create_needs_the_import_permission(as_user, approver):
    response = as_user(approver).post(url("batch-list"), {"name": "autumn"}, format="json")
    assert_error(response, 403, "permission_denied")
    assert not StagingBatch.objects.filter(name="autumn").exists()


def test_create_refuses_a_taken_name_and_a_bad_time_zone_by_field(as_user, importer, batch):
    client = as_user(importer)
    taken = client.post(url("batch-list"), {"name": batch.name}, format="json")
    assert assert_error(taken, 400, "invalid")["fields"].keys() == {"name"}

    zone = client.post(url("batch-list"), {"name": "x", "time_zone": "Mars/Base"}, format="json")
    body = assert_error(zone, 400, "invalid")
    assert body["fields"] == {
        "time_zone": ["“Mars/Base” is not a time zone name such as UTC or America/Bogota."]
    }


def test_unknown_batch_is_404(as_user, importer):
    body = assert_error(as_user(importer).get(url("batch-detail", 999)), 404, "not_found")
    assert body["details"] == ERR_BATCH_NOT_FOUND % {"id": 999}


# --- files -----------------------------------------------------------------------------------
def test_upload_answers_the_staged_counts(as_user, importer, batch, upload_sample):
    response = upload_sample(as_user(importer), batch.pk, "customers")

    assert response.status_code == 201
    body = response.json()
    assert body["staged"] == {"customers": 12}
    assert body["batch"]["customer_count"] == 12
    assert body["batch"]["last_imported_by"] == "importer"


def test_upload_dry_run_checks_without_staging(as_user, importer, batch, upload, samples):
    content = (samples / "customers.csv").read_bytes()
    response = upload(as_user(importer), batch.pk, "customers", "c.csv", content, dry_run=True)

    assert response.status_code == 200
    assert response.json()["staged"] == {"customers": 12}
    assert not StagedCustomer.objects.filter(batch=batch).exists()


def test_bad_file_is_refused_by_row_and_field_and_stages_nothing(as_user, importer, batch, upload):
    content = (
        b"id,name,email,registration_date\n"
        b"a-1,Ann,ann@example.com,2023-11-07\n"
        b"a-2,Bob,bob@example.com,yesterday\n"
    )
    response = upload(as_user(importer), batch.pk, "customers", "bad.csv", content)

    body = assert_error(response, 400, "invalid")
    assert body["details"] == "bad.csv has 1 problem(s); nothing was staged."
    [problem] = body["problems"]
    assert (problem["row"], problem["column"]) == (3, "registration_date")
    assert body["fields"]["file"][0].startswith(
        "bad.csv: row 3 (id “a-2”), column “registration_date”"
    )
    assert not StagedCustomer.objects.filter(batch=batch).exists()


def test_upload_refuses_an_unknown_kind_and_a_missing_file(as_user, importer, batch, upload):
    body = assert_error(upload(as_user(importer), batch.pk, "pets", "p.csv", b"x"), 400, "invalid")
    assert set(body["fields"]) == {"kind"}
    missing = as_user(importer).post(
        url("batch-files", batch.pk), {"kind": "customers"}, format="multipart"
    )
    assert set(assert_error(missing, 400, "invalid")["fields"]) == {"file"}


def test_upload_refuses_a_file_over_the_size_limit(as_user, importer, batch, upload, settings):
    settings.MIGRATION_UPLOAD_MAX_BYTES = 10
    response = upload(as_user(importer), batch.pk, "customers", "c.csv", b"id\n" + b"x" * 20)
    assert assert_error(response, 400, "invalid")["fields"]["file"] == [
        "The file is 23\xa0bytes; files up to 10\xa0bytes can be staged."
    ]


def test_upload_needs_the_import_permission(as_user, approver, batch, upload_sample):
    assert_error(upload_sample(as_user(approver), batch.pk, "customers"), 403, "permission_denied")


def test_upload_into_an_approved_batch_is_a_conflict(as_user, importer, upload_sample):
    frozen = BatchFactory(created_by=importer, status=Status.APPROVED)
    body = assert_error(upload_sample(as_user(importer), frozen.pk, "customers"), 409, "conflict")
    assert "Reopen it first" in body["details"]


def test_upload_into_an_unknown_batch_is_404(as_user, importer, upload_sample):
    assert_error(upload_sample(as_user(importer), 999, "customers"), 404, "not_found")


# --- validate and problems -----------------------------------------------------------------------
def test_validate_answers_the_summary(as_user, importer, staged):
    response = as_user(importer).post(url("batch-validate", staged.pk))

    assert response.status_code == 200
    body = response.json()
    assert (body["valid"], body["invalid"], body["excluded"]) == (12, 0, 0)
    assert body["is_validated"] is True
    assert body["batch"]["status"] == "validated"
    assert body["batch"]["validated_by"] == "importer"


def test_validate_needs_the_change_permission(as_user, approver, staged):
    assert_error(as_user(approver).post(url("batch-validate", staged.pk)), 403, "permission_denied")


def test_validate_of_an_approved_batch_is_a_conflict(as_user, importer):
    frozen = BatchFactory(created_by=importer, status=Status.APPROVED)
    assert_error(as_user(importer).post(url("batch-validate", frozen.pk)), 409, "conflict")


def test_problems_are_listed_paginated_and_filtered(as_user, importer, staged):
    StagedCustomer.objects.filter(batch=staged, legacy_id="000777").update(email="nope")
    StagedCustomer.objects.filter(batch=staged, legacy_id="legacy-000123").update(name="")
    client = as_user(importer)
    summary = client.post(url("batch-validate", staged.pk)).json()
    assert (summary["invalid"], summary["is_validated"]) == (2, False)

    everything = client.get(url("batch-problems", staged.pk)).json()
    assert everything["count"] == CustomerProblem.objects.filter(batch=staged).count() == 2
    by_field = client.get(url("batch-problems", staged.pk), {"field": "email"}).json()
    assert [(p["legacy_id"], p["field"], p["code"]) for p in by_field["results"]] == [
        ("000777", "email", "invalid")
    ]
    by_code = client.get(url("batch-problems", staged.pk), {"code": "required"}).json()
    assert [p["legacy_id"] for p in by_code["results"]] == ["legacy-000123"]
    page = client.get(url("batch-problems", staged.pk), {"page_size": 1, "page": 2}).json()
    assert (page["count"], len(page["results"]), page["next"]) == (2, 1, None)


def test_problems_are_answered_in_the_language_asked_for(as_user, importer, batch):
    CustomerFactory(batch=batch, legacy_id="c-1", email="nope")
    client = as_user(importer)
    client.post(url("batch-validate", batch.pk), HTTP_ACCEPT_LANGUAGE="en")

    spanish = client.get(url("batch-problems", batch.pk), HTTP_ACCEPT_LANGUAGE="es").json()
    client.post(url("batch-validate", batch.pk), HTTP_ACCEPT_LANGUAGE="es")
    english = client.get(url("batch-problems", batch.pk), HTTP_ACCEPT_LANGUAGE="en").json()

    assert [p["message"] for p in spanish["results"]] == [
        "“nope” no es una dirección de correo electrónico válida."
    ]
    assert [p["message"] for p in english["results"]] == ["“nope” is not a valid email address."]


def test_problems_refuse_an_unknown_code(as_user, importer, batch):
    response = as_user(importer).get(url("batch-problems", batch.pk), {"code": "ugly"})
    assert set(assert_error(response, 400, "invalid")["fields"]) == {"code"}


def test_problems_need_the_view_permission(as_user, nobody, batch):
    assert_error(as_user(nobody).get(url("batch-problems", batch.pk)), 403, "permission_denied")


def test_problems_of_an_unknown_batch_are_404(as_user, importer):
    assert_error(as_user(importer).get(url("batch-problems", 999)), 404, "not_found")


# --- customers, exclusions, send again -------------------------------------------------------
def test_customers_are_listed_and_filtered(as_user, importer, batch):
    CustomerFactory(batch=batch, legacy_id="a", is_valid=True)
    CustomerFactory(batch=batch, legacy_id="b", is_valid=False)
    response = as_user(importer).get(url("batch-customers", batch.pk), {"is_valid": "false"})
    assert [c["legacy_id"] for c in response.json()["results"]] == ["b"]


def test_customers_need_the_customer_view_permission(as_user, importer, nobody, batch):
    nobody.user_permissions.add(Permission.objects.get(codename="view_stagingbatch"))
    response = as_user(nobody).get(url("batch-customers", batch.pk))
    assert assert_error(response, 403, "permission_denied")["details"] == (
        ERR_MISSING_PERMISSION % {"permission": "customers.view_stagedcustomer"}
    )


def test_excluding_the_invalid_customer_lets_the_batch_validate(as_user, importer, staged):
    StagedCustomer.objects.filter(batch=staged, legacy_id="000777").update(email="nope")
    client = as_user(importer)
    client.post(url("batch-validate", staged.pk))

    response = client.post(
        url("batch-exclusions", staged.pk),
        {"legacy_ids": ["000777"], "reason": "bad address"},
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["updated"] == 1
    assert response.json()["batch"]["excluded_count"] == 1
    excluded = StagedCustomer.objects.get(batch=staged, legacy_id="000777")
    assert (excluded.is_excluded, excluded.exclusion_reason) == (True, "bad address")
    assert client.post(url("batch-validate", staged.pk)).json()["is_validated"] is True


def test_exclusion_refuses_ids_not_staged_in_the_batch(as_user, importer, staged):
    response = as_user(importer).post(
        url("batch-exclusions", staged.pk), {"legacy_ids": ["000777", "ghost"]}, format="json"
    )
    body = assert_error(response, 400, "invalid")
    assert body["fields"] == {
        "legacy_ids": [ERR_NOT_STAGED_HERE % {"batch": staged.name, "ids": "“ghost”"}]
    }
    assert not StagedCustomer.objects.filter(batch=staged, is_excluded=True).exists()


def test_exclusion_needs_the_change_permission(as_user, approver, staged):
    response = as_user(approver).post(
        url("batch-exclusions", staged.pk), {"legacy_ids": ["000777"]}, format="json"
    )
    assert_error(response, 403, "permission_denied")


def test_exclusion_in_an_approved_batch_is_a_conflict(as_user, importer):
    frozen = BatchFactory(created_by=importer, status=Status.APPROVED)
    CustomerFactory(batch=frozen, legacy_id="a")
    response = as_user(importer).post(
        url("batch-exclusions", frozen.pk), {"legacy_ids": ["a"]}, format="json"
    )
    assert_error(response, 409, "conflict")


def test_send_again_includes_a_customer_an_earlier_batch_sent(as_user, importer, approver, batch):
    earlier = BatchFactory(created_by=importer, status=Status.SUBMITTED)
    CustomerFactory(batch=earlier, legacy_id="a", outcome="sent")
    CustomerFactory(batch=batch, legacy_id="a")
    assert as_user(importer).post(url("batch-validate", batch.pk)).json()["excluded"] == 1

    response = as_user(approver).post(
        url("batch-send-again", batch.pk),
        {"legacy_ids": ["a"], "reason": "Masivo lost it"},
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert (body["customer_count"], body["reason"], body["requested_by"]) == (
        1,
        "Masivo lost it",
        "approver",
    )
    assert body["job"] is None
    batch.refresh_from_db()
    assert batch.excluded_count == 0
    assert StagedCustomer.objects.get(batch=batch, legacy_id="a").resend is True


def test_send_again_needs_the_approve_permission(as_user, importer, batch):
    CustomerFactory(batch=batch, legacy_id="a")
    response = as_user(importer).post(
        url("batch-send-again", batch.pk),
        {"legacy_ids": ["a"], "reason": "why not"},
        format="json",
    )
    assert_error(response, 403, "permission_denied")


def test_send_again_needs_a_reason(as_user, approver, batch):
    CustomerFactory(batch=batch, legacy_id="a")
    response = as_user(approver).post(
        url("batch-send-again", batch.pk), {"legacy_ids": ["a"], "reason": " "}, format="json"
    )
    body = assert_error(response, 400, "invalid")
    assert not StagedCustomer.objects.get(batch=batch, legacy_id="a").resend
    assert body


# --- approve and reopen ----------------------------------------------------------------------
def test_second_person_approves(as_user, approver, validated):
    response = as_user(approver).post(url("batch-approve", validated.pk))

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["approved_by"]) == ("approved", "approver")


def test_approval_by_the_stager_is_refused_by_the_four_eyes_rule(as_user, importer, validated):
    importer.user_permissions.add(Permission.objects.get(codename="approve_stagingbatch"))
    importer = type(importer).objects.get(pk=importer.pk)  # no stale permission cache

    body = assert_error(
        as_user(importer).post(url("batch-approve", validated.pk)), 403, "permission_denied"
    )

    assert body["details"] == ERR_APPROVE_OWN_BATCH % {"batch": validated.name}
    validated.refresh_from_db()
    assert validated.status == Status.VALIDATED


def test_approval_needs_the_approve_permission(as_user, importer, nobody, validated):
    nobody.user_permissions.add(Permission.objects.get(codename="view_stagingbatch"))
    assert_error(as_user(nobody).post(url("batch-approve", validated.pk)), 403, "permission_denied")


def test_approving_a_draft_is_a_conflict(as_user, approver, staged):
    body = assert_error(as_user(approver).post(url("batch-approve", staged.pk)), 409, "conflict")
    assert "only a validated batch can be approved" in body["details"]


def test_approving_an_unknown_batch_is_404(as_user, approver):
    assert_error(as_user(approver).post(url("batch-approve", 999)), 404, "not_found")


def test_reopen_voids_the_approval(as_user, importer, approver, validated):
    as_user(approver).post(url("batch-approve", validated.pk))

    response = as_user(importer).post(url("batch-reopen", validated.pk))

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["approved_by"]) == ("draft", None)


def test_reopening_a_draft_is_a_conflict(as_user, importer, batch):
    body = assert_error(as_user(importer).post(url("batch-reopen", batch.pk)), 409, "conflict")
    assert body["details"] == ERR_TRANSITION % {
        "batch": batch.name,
        "status": "draft",
        "target": "draft",
    }


def test_reopen_needs_the_change_permission(as_user, approver, validated):
    assert_error(
        as_user(approver).post(url("batch-reopen", validated.pk)), 403, "permission_denied"
    )


# --- dry run --------------------------------------------------------------------------------
def test_dry_run_streams_every_request_body_as_json_lines(as_user, approver, validated):
    response = as_user(approver).get(url("batch-dry-run", validated.pk))

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "application/x-ndjson"
    assert "spring-migration-dry-run.jsonl" in response["Content-Disposition"]
    lines = b"".join(response.streaming_content).splitlines()
    bodies = [json.loads(line) for line in lines]
    assert len(bodies) == 1
    assert {c["id"] for c in bodies[0]["customers"]} == set(
        StagedCustomer.objects.filter(batch=validated).values_list("legacy_id", flat=True)
    )


def test_dry_run_answers_a_client_that_asks_for_json_lines(as_user, approver, validated):
    response = as_user(approver).get(
        url("batch-dry-run", validated.pk), HTTP_ACCEPT="application/x-ndjson"
    )
    assert response.status_code == 200


def test_dry_run_of_a_draft_is_a_conflict(as_user, approver, staged):
    assert_error(as_user(approver).get(url("batch-dry-run", staged.pk)), 409, "conflict")


def test_dry_run_needs_the_view_permission(as_user, nobody, validated):
    assert_error(as_user(nobody).get(url("batch-dry-run", validated.pk)), 403, "permission_denied")


def test_detail_needs_the_view_permission(as_user, nobody, batch):
    assert_error(as_user(nobody).get(url("batch-detail", batch.pk)), 403, "permission_denied")


@pytest.mark.parametrize(
    ("method", "name"),
    [
        ("get", "batch-detail"),
        ("post", "batch-files"),
        ("post", "batch-validate"),
        ("get", "batch-problems"),
        ("get", "batch-customers"),
        ("post", "batch-exclusions"),
        ("post", "batch-send-again"),
        ("post", "batch-approve"),
        ("post", "batch-reopen"),
        ("get", "batch-dry-run"),
        ("post", "batch-submit"),
    ],
)
def test_every_batch_endpoint_answers_404_for_an_unknown_batch(as_user, admin_user, method, name):
    response = getattr(as_user(admin_user), method)(url(name, 999))
    body = assert_error(response, 404, "not_found")
    assert body["details"] == ERR_BATCH_NOT_FOUND % {"id": 999}
