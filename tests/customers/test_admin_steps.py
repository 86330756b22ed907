import json

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from customers.models import CustomerProblem, StagedCustomer, StagingBatch
from customers.services.batches import ERR_DRY_RUN_STATE
from tests.customers.importing import stage_sample
from tests.factories import BatchFactory, CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db
Status = StagingBatch.Status


def step_url(batch, step):
    return reverse("admin:customers_stagingbatch_step", args=[batch.pk, step])


def change_url(batch):
    return reverse("admin:customers_stagingbatch_change", args=[batch.pk])


@pytest.fixture
def staged_batch(client, importer, batch, samples):
    client.force_login(importer)
    for kind in ("customers", "balances", "devices", "metrics"):
        stage_sample(client, batch, samples, kind)
    return batch


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_validate_asks_for_confirmation_then_validates_by_post(client, staged_batch):
    page = client.get(step_url(staged_batch, "validate"))
    assert "Every one of the 12 staged customers will be checked" in page.content.decode()
    staged_batch.refresh_from_db()
    assert staged_batch.status == Status.DRAFT  # a GET changes nothing

    response = client.post(step_url(staged_batch, "validate"), follow=True)

    staged_batch.refresh_from_db()
    assert staged_batch.status == Status.VALIDATED
    assert staged_batch.valid_count == 12
    assert _messages(response)[-1:] == [
        "Validation: 12 valid, 0 invalid, 0 excluded. The batch is validated."
    ]


def test_invalid_customer_keeps_the_batch_a_draft_and_lists_the_problem(client, staged_batch):
    StagedCustomer.objects.filter(batch=staged_batch, legacy_id="000777").update(
        email="not-an-address"
    )
    response = client.post(step_url(staged_batch, "validate"), follow=True)

    staged_batch.refresh_from_db()
    assert staged_batch.status == Status.DRAFT
    assert staged_batch.invalid_count == 1
    assert "1 invalid" in _messages(response)[-1]
    problem = CustomerProblem.objects.get(batch=staged_batch)
    assert (problem.legacy_id, problem.field) == ("000777", "email")
    listing = client.get(
        reverse("admin:customers_customerproblem_changelist")
        + f"?batch__id__exact={staged_batch.pk}"
    )
    assert "000777" in listing.content.decode()
    assert problem.message in listing.content.decode()


def test_excluding_the_invalid_customer_lets_the_batch_validate(client, staged_batch):
    StagedCustomer.objects.filter(batch=staged_batch, legacy_id="000777").update(email="")
    client.post(step_url(staged_batch, "validate"))
    bad = StagedCustomer.objects.get(batch=staged_batch, legacy_id="000777")

    client.post(
        reverse("admin:customers_stagedcustomer_changelist"),
        {"action": "exclude_customers", "_selected_action": [bad.pk]},
    )
    client.post(step_url(staged_batch, "validate"))

    staged_batch.refresh_from_db()
    assert staged_batch.status == Status.VALIDATED
    assert (staged_batch.valid_count, staged_batch.excluded_count) == (11, 1)


def test_stager_is_not_offered_approve_and_cannot_force_it(client, importer, staged_batch):
    importer.user_permissions.add(Permission.objects.get(codename="approve_stagingbatch"))
    client.post(step_url(staged_batch, "validate"))
    page = client.get(change_url(staged_batch)).content.decode()
    assert "step-approve" not in page

    response = client.post(step_url(staged_batch, "approve"), follow=True)

    assert "Four-eyes rule" in _messages(response)[-1]
    staged_batch.refresh_from_db()
    assert staged_batch.status == Status.VALIDATED


def test_second_person_approves_and_the_batch_freezes(client, approver, staged_batch):
    client.post(step_url(staged_batch, "validate"))
    client.force_login(approver)
    assert "step-approve" in client.get(change_url(staged_batch)).content.decode()

    client.post(step_url(staged_batch, "approve"))

    staged_batch.refresh_from_db()
    assert staged_batch.status == Status.APPROVED
    assert staged_batch.approved_by == approver
    assert staged_batch.approved_version == staged_batch.content_version
    assert "import_link" not in client.get(change_url(staged_batch)).content.decode()


def test_reopen_voids_the_approval(client, importer, approver, staged_batch):
    client.post(step_url(staged_batch, "validate"))
    client.force_login(approver)
    client.post(step_url(staged_batch, "approve"))
    client.force_login(importer)

    client.post(step_url(staged_batch, "reopen"))

    staged_batch.refresh_from_db()
    assert staged_batch.status == Status.DRAFT
    assert staged_batch.approved_by is None
    assert staged_batch.approved_version is None


def test_user_without_permission_cannot_run_a_step(client, staged_batch):
    viewer = UserFactory(username="viewer", perms=["customers.view_stagingbatch"])
    client.force_login(viewer)
    assert client.post(step_url(staged_batch, "validate")).status_code == 403
    assert "step-validate" not in client.get(change_url(staged_batch)).content.decode()


def test_dry_run_downloads_the_exact_bodies_as_json_lines(client, staged_batch):
    client.post(step_url(staged_batch, "validate"))

    response = client.get(reverse("admin:customers_stagingbatch_dry_run", args=[staged_batch.pk]))

    assert response["Content-Type"] == "application/x-ndjson"
    assert 'filename="spring-migration-dry-run.jsonl"' in response["Content-Disposition"]
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert len(lines) == 1
    body = json.loads(lines[0])
    assert len(body["customers"]) == 12
    john = next(c for c in body["customers"] if c["id"] == "legacy-000123")
    assert john["metrics"]["lifetime"]["spend_total"] == 50.2


def test_dry_run_of_a_draft_is_refused(client, staged_batch):
    response = client.get(
        reverse("admin:customers_stagingbatch_dry_run", args=[staged_batch.pk]), follow=True
    )
    refusal = ERR_DRY_RUN_STATE % {"batch": staged_batch.name, "status": "draft"}
    assert refusal in _messages(response)


def test_staged_customer_of_an_approved_batch_cannot_be_edited(client, importer):
    batch = BatchFactory(created_by=importer, status=Status.APPROVED)
    customer = CustomerFactory(batch=batch)
    client.force_login(importer)
    url = reverse("admin:customers_stagedcustomer_change", args=[customer.pk])
    response = client.post(url, {"legacy_id": customer.legacy_id, "name": "Changed"})
    assert response.status_code == 403
    customer.refresh_from_db()
    assert customer.name != "Changed"


def test_editing_a_customer_of_a_validated_batch_sends_it_back_to_draft(client, importer):
    batch = BatchFactory(created_by=importer, status=Status.VALIDATED)
    customer = CustomerFactory(batch=batch)
    client.force_login(importer)
    url = reverse("admin:customers_stagedcustomer_change", args=[customer.pk])
    form = client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k != "batch"}
    data.update({"name": "Changed", "metadata": ""})
    for prefix in ("balances", "devices", "metrics"):
        data.update({f"{prefix}-TOTAL_FORMS": 0, f"{prefix}-INITIAL_FORMS": 0})

    response = client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    batch.refresh_from_db()
    assert batch.status == Status.DRAFT
