"""The batch's page as two operators see it: where the batch is (a step indicator), what its
problems block, what comes next and who may do it, the steps forward apart from the step
back, read-only once approved; and the words each step's outcome is told in."""

import datetime as dt
import re

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from console.admin import Step
from customers.models import CustomerProblem, Outcome, StagedCustomer, StagingBatch
from customers.selectors import batch_problem_counts
from customers.services import (
    batch_approve,
    batch_refresh_counts,
    batch_validate,
    customers_set_excluded,
)
from tests.factories import BatchFactory, CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db
Status = StagingBatch.Status
Code = CustomerProblem.Code
UTC = dt.UTC


def change_url(batch) -> str:
    return reverse("admin:customers_stagingbatch_change", args=[batch.pk])


def step_url(batch, step) -> str:
    return reverse("admin:customers_stagingbatch_step", args=[batch.pk, step])


def page(client, batch, **headers) -> str:
    response = client.get(change_url(batch), **headers)
    assert response.status_code == 200
    return response.content.decode()


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def progress(html: str) -> list[tuple[str, bool]]:
    """The step indicator: each step's name, and whether it is marked the current one."""
    found = re.findall(r'<li class="console-progress-(\w+)"( aria-current="step")?', html)
    names = re.findall(r'data-step="(\w+)"', html)
    return [(name, bool(current)) for name, (_state, current) in zip(names, found, strict=True)]


def sent_batch(legacy_ids, *, name="winter-migration") -> StagingBatch:
    """A submitted batch that sent ``legacy_ids`` to Masivo."""
    earlier = BatchFactory(name=name, status=Status.SUBMITTED)
    for legacy_id in legacy_ids:
        CustomerFactory(
            batch=earlier,
            legacy_id=legacy_id,
            is_valid=True,
            outcome=Outcome.SENT,
            outcome_at=dt.datetime(2025, 1, 5, tzinfo=UTC),
        )
    return earlier


@pytest.fixture
def validated(batch, importer):
    CustomerFactory.create_batch(3, batch=batch)
    batch_refresh_counts(batch=batch)
    batch_validate(batch=batch, user=importer)
    batch.refresh_from_db()
    assert batch.status == Status.VALIDATED
    return batch


@pytest.fixture
def root(db):
    return UserFactory(username="root", is_superuser=True)


# --- where the batch is -------------------------------------------------------------------


def test_the_step_indicator_marks_the_current_step_of_a_draft(client, importer, batch):
    client.force_login(importer)

    html = page(client, batch)

    assert '<ol class="console-progress">' in html
    assert progress(html) == [
        ("staged", True),
        ("validated", False),
        ("approved", False),
        ("submitted", False),
        ("sent", False),
    ]
    assert html.count('aria-current="step"') == 1


def test_a_submitted_batch_is_sent_once_masivo_has_every_customer(client, root, batch):
    customers = CustomerFactory.create_batch(2, batch=batch, is_valid=True)
    StagingBatch.objects.filter(pk=batch.pk).update(status=Status.SUBMITTED)
    client.force_login(root)
    assert ("submitted", True) in progress(page(client, batch))

    StagedCustomer.objects.filter(pk__in=[c.pk for c in customers]).update(outcome=Outcome.SENT)

    assert progress(page(client, batch))[-1] == ("sent", True)


# --- problems: a warning while they block, a neutral note once excluded ----------------


def test_problems_that_block_are_a_warning_at_the_top_of_the_page(client, importer, batch):
    CustomerFactory(batch=batch, legacy_id="bad", email="broken")
    CustomerFactory(batch=batch)
    batch_validate(batch=batch, user=importer)
    client.force_login(importer)

    html = page(client, batch)

    note = html.index('id="batch-problems"')
    assert 'class="errornote console-problem-note"' in html
    assert "1 problem keeps this batch from being validated (1 invalid customers" in html
    assert note < html.index('id="id_name"')  # above the form, not below the fold
    problems = reverse("admin:customers_customerproblem_changelist")
    assert f"{problems}?batch__id__exact={batch.pk}&amp;blocking=yes" in html


def test_problems_of_excluded_customers_are_a_neutral_note(client, importer, batch):
    bad = CustomerFactory(batch=batch, legacy_id="bad", email="broken")
    CustomerFactory(batch=batch)
    batch_validate(batch=batch, user=importer)
    customers_set_excluded(
        batch=batch, customer_ids=[bad.pk], excluded=True, reason="CRM test row", user=importer
    )
    batch_validate(batch=batch, user=importer)
    batch.refresh_from_db()
    assert batch.status == Status.VALIDATED
    client.force_login(importer)

    html = page(client, batch)

    assert 'id="batch-problems"' not in html
    assert "errornote" not in html
    assert "1 problem belongs to customers excluded from the migration" in html


# --- who approves -----------------------------------------------------------------------


def test_the_stager_is_told_another_person_must_approve_and_who_can(
    client, importer, approver, root, validated
):
    importer.user_permissions.add(Permission.objects.get(codename="approve_stagingbatch"))
    UserFactory(username="retired", is_active=False, is_superuser=True)
    client.force_login(importer)

    html = page(client, validated)

    assert "You staged this batch, so another person must approve it" in html
    assert "Who can approve it: approver, root." in html
    assert "step-approve" not in html


def test_someone_else_who_may_approve_gets_the_button(client, approver, validated):
    client.force_login(approver)

    html = page(client, validated)

    assert "Next: approve the batch." in html
    assert "You staged this batch" not in html
    assert re.search(r'class="button default step-approve"', html)


def test_nobody_able_to_approve_is_said_so(client, importer, validated):
    client.force_login(importer)

    assert "Nobody can approve it yet" in page(client, validated)


# --- steps forward, the step back, read-only once approved ------------------------------


def test_reopen_is_shown_apart_from_submit(client, root, importer, approver, validated):
    batch_approve(batch=validated, user=approver)
    client.force_login(root)

    html = page(client, validated)

    forward = html.index('class="console-forward"')
    back = html.index('id="step-back"')
    assert forward < html.index("step-submit") < back < html.index("step-reopen")
    assert 'class="button console-danger step-reopen"' in html


def test_an_approved_batch_has_no_save_button_and_read_only_fields(
    client, root, approver, validated
):
    batch_approve(batch=validated, user=approver)
    client.force_login(root)

    html = page(client, validated)

    assert 'name="_save"' not in html
    assert 'name="_continue"' not in html
    assert 'id="id_name"' not in html
    response = client.post(change_url(validated), {"name": "renamed", "time_zone": "UTC"})
    assert response.status_code == 403
    validated.refresh_from_db()
    assert validated.name == "spring-migration"


def test_saving_a_new_batch_opens_its_page(client, importer):
    client.force_login(importer)

    response = client.post(
        reverse("admin:customers_stagingbatch_add"),
        {"name": "autumn", "time_zone": "UTC", "_save": "Save"},
        follow=True,
    )

    batch = StagingBatch.objects.get(name="autumn")
    assert response.redirect_chain[-1][0] == change_url(batch)
    assert "Batch “autumn” is created. Import its files next" in messages_of(response)[-1]


# --- the confirmation pages -------------------------------------------------------------


def confirm_button(html: str) -> str:
    found = re.search(r'<button type="submit" name="confirm"[^>]*id="confirm"[^>]*>([^<]*)<', html)
    assert found, html[-3000:]
    return found.group(1).strip()


@pytest.mark.parametrize(
    ("language", "labels"),
    [
        (
            "en",
            [
                "Yes, validate the batch",
                "Yes, approve the batch",
                "Yes, reopen the batch",
                "Yes, submit the batch to Masivo",
            ],
        ),
        (
            "es",
            [
                "Sí, validar el lote",
                "Sí, aprobar el lote",
                "Sí, reabrir el lote",
                "Sí, enviar el lote a Masivo",
            ],
        ),
    ],
)
def test_every_step_confirmation_button_says_what_it_does(
    client, root, importer, approver, batch, language, labels
):
    CustomerFactory.create_batch(2, batch=batch)
    draft = BatchFactory(created_by=importer)
    CustomerFactory(batch=draft)
    batch_validate(batch=batch, user=importer)
    approved = BatchFactory(created_by=importer)
    CustomerFactory(batch=approved)
    batch_validate(batch=approved, user=importer)
    batch_approve(batch=approved, user=approver)
    client.force_login(root)
    pages = [(draft, "validate"), (batch, "approve"), (approved, "reopen"), (approved, "submit")]

    shown = [
        confirm_button(
            client.get(step_url(obj, step), HTTP_ACCEPT_LANGUAGE=language).content.decode()
        )
        for obj, step in pages
    ]

    assert shown == labels


# --- what validating says ---------------------------------------------------------------


def test_validating_a_batch_whose_customers_were_all_sent_names_the_batch_that_sent_them(
    client, importer, batch
):
    sent_batch(["c-1", "c-2"])
    CustomerFactory(batch=batch, legacy_id="c-1")
    CustomerFactory(batch=batch, legacy_id="c-2")
    batch_refresh_counts(batch=batch)
    client.force_login(importer)

    response = client.post(step_url(batch, "validate"), follow=True)

    text = messages_of(response)[-1]
    assert text.startswith("Validation: 0 valid, 0 invalid, 2 excluded.")
    assert "Nothing is left to send: every customer of this batch was already sent" in text
    assert "by batch “winter-migration”" in text
    assert "Fix or exclude" not in text
    assert "Nothing is left to send" in page(client, batch)


def test_validating_a_submitted_batch_does_not_say_reopen_it(client, root, batch):
    CustomerFactory(batch=batch)
    StagingBatch.objects.filter(pk=batch.pk).update(status=Status.SUBMITTED)
    client.force_login(root)

    response = client.post(step_url(batch, "validate"), follow=True)

    text = messages_of(response)[-1]
    assert "cannot be reopened" in text
    assert "Reopen it first" not in text


def test_some_customers_sent_elsewhere_are_named_when_the_batch_validates(client, importer, batch):
    sent_batch(["c-1"])
    CustomerFactory(batch=batch, legacy_id="c-1")
    CustomerFactory(batch=batch, legacy_id="c-2")
    client.force_login(importer)

    response = client.post(step_url(batch, "validate"), follow=True)

    assert messages_of(response)[-1] == (
        "Validation: 1 valid, 0 invalid, 1 excluded. The batch is validated. 1 customer was "
        "already sent to Masivo by batch “winter-migration” and is excluded."
    )


# --- the customer list ------------------------------------------------------------------


def test_an_excluded_customer_is_marked_by_a_word_not_a_tick(client, importer, batch):
    kept = CustomerFactory(batch=batch, legacy_id="kept")
    left = CustomerFactory(batch=batch, legacy_id="left-out")
    customers_set_excluded(
        batch=batch, customer_ids=[left.pk], excluded=True, reason="Test row", user=importer
    )
    client.force_login(importer)

    html = client.get(
        reverse("admin:customers_stagedcustomer_changelist") + f"?batch__id__exact={batch.pk}"
    ).content.decode()

    rows = {legacy_id: row for legacy_id, row in re.findall(r">([\w-]+)</a></th>(.*?)</tr>", html)}
    assert '<span class="console-excluded" title="Test row">Excluded</span>' in rows["left-out"]
    assert "Excluded" not in rows[kept.legacy_id]
    assert 'class="results" tabindex="0" role="region"' in html


def test_problem_counts_ignore_problems_of_customers_sent_by_another_batch(importer, batch):
    sent_batch(["c-1"])
    CustomerFactory(batch=batch, legacy_id="c-1")
    batch_validate(batch=batch, user=importer)

    assert CustomerProblem.objects.filter(batch=batch, code=Code.ALREADY_SENT).count() == 1
    counts = batch_problem_counts(batch=batch)
    assert (counts.blocking, counts.excluded) == (0, 1)


def test_a_confirmation_button_is_never_empty():
    blank = Step("submit", "Submit to Masivo", "perm", ("approved",), "Submit?", "  ")

    assert blank.button_label == "Submit to Masivo"
