import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from customers.contract import messages
from customers.models import CustomerProblem, Outcome, StagedCustomer, StagingBatch
from customers.payload import batch_send_queryset
from customers.services import (
    BatchStateError,
    ValidationSummary,
    batch_validate,
    customers_set_excluded,
    customers_set_resend,
)
from customers.services import problems as validation_problems
from customers.services.problems import (
    ERR_ALREADY_SENT,
    ERR_CHILD_ELSEWHERE,
    ERR_DUPLICATE_EMAIL,
    ERR_DUPLICATE_EMAIL_MORE,
    EXCLUSION_ALREADY_SENT,
)
from customers.services.validation import (
    ERR_REASON_TOO_LONG,
    ERR_VALIDATE_STATE,
    ERR_VALIDATE_SUBMITTED,
)
from tests.factories import (
    BalanceFactory,
    BatchFactory,
    CustomerFactory,
    DeviceFactory,
    MetricFactory,
)

UTC = dt.UTC
Status = StagingBatch.Status
Code = CustomerProblem.Code


def problem_rows(batch) -> set[tuple]:
    return set(
        CustomerProblem.objects.filter(batch=batch).values_list(
            "legacy_id", "field", "code", "message"
        )
    )


def sent_elsewhere(legacy_id: str, *, name: str = "winter-migration") -> StagingBatch:
    """A submitted batch that already sent ``legacy_id`` to Masivo."""
    earlier = BatchFactory(name=name, status=Status.SUBMITTED)
    CustomerFactory(
        batch=earlier,
        legacy_id=legacy_id,
        outcome=Outcome.SENT,
        outcome_at=dt.datetime(2025, 1, 5, tzinfo=UTC),
    )
    return earlier


def test_valid_batch_becomes_validated(batch, importer):
    customers = CustomerFactory.create_batch(3, batch=batch)
    BalanceFactory(customer=customers[0])
    DeviceFactory(customer=customers[1])
    MetricFactory(customer=customers[2])

    summary = batch_validate(batch=batch, user=importer)

    assert summary == ValidationSummary(
        valid=3, invalid=0, excluded=0, problem_count=0, status=Status.VALIDATED
    )
    assert summary.is_validated
    assert batch.status == Status.VALIDATED
    assert batch.validated_by == importer
    assert batch.validated_at is not None
    assert (batch.valid_count, batch.invalid_count, batch.excluded_count) == (3, 0, 0)
    assert set(batch.customers.values_list("is_valid", flat=True)) == {True}


@override_settings(MASIVO_DEVICE_PLATFORMS=["ios", "android"])
def test_contract_problems_are_stored_by_customer_and_field(batch, importer):
    bad_email = CustomerFactory(batch=batch, legacy_id="c-email", email="not-an-address")
    CustomerFactory(batch=batch, legacy_id="c-name", name="")
    CustomerFactory(batch=batch, legacy_id="c-metadata", metadata=["crm"])
    CustomerFactory(batch=batch, legacy_id="c-dob", dob=dt.datetime(1990, 4, 1, 5, tzinfo=UTC))
    CustomerFactory(batch=batch, legacy_id="c-gender", gender="UNKNOWN")
    web = CustomerFactory(batch=batch, legacy_id="c-device")
    DeviceFactory(customer=web, platform="web")
    fine = CustomerFactory(batch=batch, legacy_id="c-fine")

    summary = batch_validate(batch=batch, user=importer)

    assert problem_rows(batch) == {
        ("c-email", "email", Code.INVALID, messages.ERR_EMAIL % {"value": "not-an-address"}),
        ("c-name", "name", Code.REQUIRED, str(messages.ERR_REQUIRED)),
        ("c-metadata", "metadata", Code.INVALID, str(messages.ERR_METADATA)),
        (
            "c-dob",
            "dob",
            Code.INVALID,
            messages.ERR_DOB_MIDNIGHT % {"value": "1990-04-01T05:00:00Z"},
        ),
        (
            "c-gender",
            "gender",
            Code.INVALID,
            messages.ERR_CHOICE % {"value": "UNKNOWN", "choices": "MALE, FEMALE, OTHER"},
        ),
        (
            "c-device",
            "devices[0].device_info.platform",
            Code.INVALID,
            messages.ERR_CHOICE % {"value": "web", "choices": "ios, android"},
        ),
    }
    assert summary.invalid == 6
    assert summary.valid == 1
    assert summary.problem_count == 6
    assert CustomerProblem.objects.get(legacy_id="c-email").customer == bad_email
    valid = dict(batch.customers.values_list("legacy_id", "is_valid"))
    assert valid == {
        "c-email": False,
        "c-name": False,
        "c-metadata": False,
        "c-dob": False,
        "c-gender": False,
        "c-device": False,
        fine.legacy_id: True,
    }


@override_settings(MASIVO_REQUIRED_FIELDS=["name", "email", "registration_date", "country"])
def test_required_fields_setting_applies_to_batch_validation(batch, importer):
    CustomerFactory(batch=batch, legacy_id="no-country")
    batch_validate(batch=batch, user=importer)
    assert problem_rows(batch) == {
        ("no-country", "country", Code.REQUIRED, str(messages.ERR_REQUIRED))
    }


def test_invalid_batch_cannot_reach_validated(batch, importer):
    CustomerFactory(batch=batch)
    CustomerFactory(batch=batch, email="broken")

    summary = batch_validate(batch=batch, user=importer)

    assert summary.status == Status.DRAFT
    assert not summary.is_validated
    assert batch.status == Status.DRAFT
    assert batch.validated_at is None
    assert (batch.valid_count, batch.invalid_count) == (1, 1)


def test_validated_batch_with_a_new_problem_returns_to_draft(batch, importer):
    customer = CustomerFactory(batch=batch)
    batch_validate(batch=batch, user=importer)
    assert batch.status == Status.VALIDATED
    StagedCustomer.objects.filter(pk=customer.pk).update(email="broken")

    summary = batch_validate(batch=batch, user=importer)

    assert summary.status == Status.DRAFT
    assert batch.status == Status.DRAFT
    assert batch.validated_at is None
    assert batch.validated_by is None


def test_validating_a_validated_batch_again_records_the_new_validator(batch, importer, approver):
    CustomerFactory(batch=batch)
    batch_validate(batch=batch, user=importer)
    first_at = batch.validated_at

    summary = batch_validate(batch=batch, user=approver)

    assert summary.status == Status.VALIDATED
    assert batch.validated_by == approver
    assert batch.validated_at >= first_at


@pytest.mark.parametrize(
    ("status", "message"),
    [(Status.APPROVED, ERR_VALIDATE_STATE), (Status.SUBMITTED, ERR_VALIDATE_SUBMITTED)],
)
def test_validation_of_an_approved_or_submitted_batch_is_refused(batch, importer, status, message):
    CustomerFactory(batch=batch, email="broken")
    StagingBatch.objects.filter(pk=batch.pk).update(status=status)

    with pytest.raises(BatchStateError) as raised:
        batch_validate(batch=batch, user=importer)

    label = StagingBatch.Status(status).label.lower()
    assert raised.value.messages == [message % {"batch": batch.name, "status": label}]
    assert not CustomerProblem.objects.exists()
    assert batch.customers.get().is_valid is None


def test_previous_problems_are_replaced(batch, importer):
    customer = CustomerFactory(batch=batch, email="broken")
    batch_validate(batch=batch, user=importer)
    assert CustomerProblem.objects.filter(batch=batch).count() == 1
    StagedCustomer.objects.filter(pk=customer.pk).update(email="fixed@example.com")

    summary = batch_validate(batch=batch, user=importer)

    assert summary.problem_count == 0
    assert not CustomerProblem.objects.filter(batch=batch).exists()
    assert summary.status == Status.VALIDATED


def test_problems_of_other_batches_are_left_alone(batch, importer):
    other = CustomerFactory(email="broken")
    batch_validate(batch=other.batch, user=importer)
    CustomerFactory(batch=batch)

    batch_validate(batch=batch, user=importer)

    assert CustomerProblem.objects.filter(batch=other.batch).count() == 1


def test_duplicate_email_case_variants_are_flagged(batch, importer):
    CustomerFactory(batch=batch, legacy_id="a-1", email="Ana@Example.com")
    CustomerFactory(batch=batch, legacy_id="a-2", email="ana@example.COM")
    CustomerFactory(batch=batch, legacy_id="a-3", email="ana@example.com")
    CustomerFactory(batch=batch, legacy_id="b-1", email="bea@example.com")

    summary = batch_validate(batch=batch, user=importer)

    def message(email: str, others: str) -> str:
        return ERR_DUPLICATE_EMAIL % {"email": email, "others": others}

    assert problem_rows(batch) == {
        ("a-1", "email", Code.DUPLICATE_EMAIL, message("Ana@Example.com", "“a-2”, “a-3”")),
        ("a-2", "email", Code.DUPLICATE_EMAIL, message("ana@example.COM", "“a-1”, “a-3”")),
        ("a-3", "email", Code.DUPLICATE_EMAIL, message("ana@example.com", "“a-1”, “a-2”")),
    }
    assert (summary.valid, summary.invalid) == (1, 3)
    assert summary.status == Status.DRAFT
    flags = dict(batch.customers.values_list("legacy_id", "is_valid"))
    assert flags == {"a-1": False, "a-2": False, "a-3": False, "b-1": True}


def test_a_large_duplicate_group_names_some_ids_and_counts_the_rest(batch, importer):
    for index in range(8):
        CustomerFactory(batch=batch, legacy_id=f"d-{index}", email="same@example.com")

    batch_validate(batch=batch, user=importer)

    message = CustomerProblem.objects.get(batch=batch, legacy_id="d-0").message
    named = ", ".join(f"“d-{index}”" for index in range(1, 6))
    others = ERR_DUPLICATE_EMAIL_MORE % {"named": named, "more": 2}
    assert message == ERR_DUPLICATE_EMAIL % {
        "email": "same@example.com",
        "others": others,
    }


def test_excluding_all_but_one_duplicate_settles_it(batch, importer):
    keep = CustomerFactory(batch=batch, email="ana@example.com")
    drop = CustomerFactory(batch=batch, email="ANA@example.com")
    batch_validate(batch=batch, user=importer)
    assert batch.status == Status.DRAFT

    customers_set_excluded(
        batch=batch, customer_ids=[drop.pk], excluded=True, reason="same person", user=importer
    )
    summary = batch_validate(batch=batch, user=importer)

    assert summary == ValidationSummary(
        valid=1, invalid=0, excluded=1, problem_count=0, status=Status.VALIDATED
    )
    assert list(batch_send_queryset(batch)) == [keep]


def test_customer_sent_by_an_earlier_batch_is_excluded_with_other_batch_set(batch, importer):
    earlier = sent_elsewhere("legacy-7")
    again = CustomerFactory(batch=batch, legacy_id="legacy-7")
    CustomerFactory(batch=batch)

    summary = batch_validate(batch=batch, user=importer)

    problem = CustomerProblem.objects.get(batch=batch)
    assert problem.customer == again
    assert problem.code == Code.ALREADY_SENT
    assert problem.field == "id"
    assert problem.other_batch == earlier
    assert problem.message == ERR_ALREADY_SENT % {"batch": earlier.name}
    again.refresh_from_db()
    assert again.is_excluded
    assert again.exclusion_reason == EXCLUSION_ALREADY_SENT % {"batch": earlier.name}
    assert summary == ValidationSummary(
        valid=1, invalid=0, excluded=1, problem_count=1, status=Status.VALIDATED
    )
    assert batch.excluded_count == 1
    assert again not in batch_send_queryset(batch)


def test_resend_includes_an_already_sent_customer_again(batch, importer):
    sent_elsewhere("legacy-7")
    again = CustomerFactory(batch=batch, legacy_id="legacy-7")
    other = CustomerFactory(batch=batch)
    batch_validate(batch=batch, user=importer)
    assert batch.status == Status.VALIDATED

    updated = customers_set_resend(batch=batch, customer_ids=[again.pk], resend=True, user=importer)

    assert updated == 1
    again.refresh_from_db()
    assert again.resend
    assert not again.is_excluded
    assert again.exclusion_reason == ""
    assert batch.status == Status.DRAFT
    assert batch.excluded_count == 0

    summary = batch_validate(batch=batch, user=importer)

    assert summary == ValidationSummary(
        valid=2, invalid=0, excluded=0, problem_count=0, status=Status.VALIDATED
    )
    assert list(batch_send_queryset(batch)) == [again, other]


def test_unticking_resend_excludes_the_customer_again_on_validation(batch, importer):
    sent_elsewhere("legacy-7")
    again = CustomerFactory(batch=batch, legacy_id="legacy-7", resend=True)
    batch_validate(batch=batch, user=importer)
    again.refresh_from_db()
    assert not again.is_excluded

    customers_set_resend(batch=batch, customer_ids=[again.pk], resend=False, user=importer)
    summary = batch_validate(batch=batch, user=importer)

    again.refresh_from_db()
    assert again.is_excluded
    assert summary.excluded == 1


def test_resend_ticked_outside_the_service_is_honoured_by_validation(batch, importer):
    sent_elsewhere("legacy-7")
    again = CustomerFactory(batch=batch, legacy_id="legacy-7")
    batch_validate(batch=batch, user=importer)
    StagedCustomer.objects.filter(pk=again.pk).update(resend=True)

    summary = batch_validate(batch=batch, user=importer)

    again.refresh_from_db()
    assert not again.is_excluded
    assert summary.excluded == 0
    assert summary.valid == 1


def test_resend_keeps_an_operators_own_exclusion_of_an_already_sent_customer(batch, importer):
    sent_elsewhere("legacy-7")
    again = CustomerFactory(batch=batch, legacy_id="legacy-7")
    batch_validate(batch=batch, user=importer)
    customers_set_excluded(
        batch=batch, customer_ids=[again.pk], excluded=True, reason="duplicate", user=importer
    )

    customers_set_resend(batch=batch, customer_ids=[again.pk], resend=True, user=importer)
    batch_validate(batch=batch, user=importer)

    again.refresh_from_db()
    assert again.is_excluded
    assert again.exclusion_reason == "duplicate"


def test_manual_exclusion_of_an_unsent_customer_is_kept(batch, importer):
    customer = CustomerFactory(batch=batch, is_excluded=True, exclusion_reason="asked to leave")
    CustomerFactory(batch=batch)

    batch_validate(batch=batch, user=importer)

    customer.refresh_from_db()
    assert customer.is_excluded
    assert customer.exclusion_reason == "asked to leave"


def test_customer_that_failed_in_an_earlier_batch_is_not_excluded(batch, importer):
    earlier = BatchFactory(status=Status.SUBMITTED)
    CustomerFactory(batch=earlier, legacy_id="legacy-8", outcome=Outcome.FAILED)
    CustomerFactory(batch=batch, legacy_id="legacy-8")

    summary = batch_validate(batch=batch, user=importer)

    assert summary.excluded == 0
    assert summary.problem_count == 0


def test_excluded_customer_with_problems_counts_as_excluded_not_invalid(batch, importer):
    CustomerFactory(batch=batch, email="broken", is_excluded=True)
    CustomerFactory(batch=batch)

    summary = batch_validate(batch=batch, user=importer)

    assert summary == ValidationSummary(
        valid=1, invalid=0, excluded=1, problem_count=1, status=Status.VALIDATED
    )


def test_batch_where_every_customer_is_excluded_stays_draft(batch, importer):
    CustomerFactory(batch=batch, is_excluded=True)

    summary = batch_validate(batch=batch, user=importer)

    assert summary.status == Status.DRAFT
    assert summary.excluded == 1


def test_empty_batch_stays_draft(batch, importer):
    summary = batch_validate(batch=batch, user=importer)
    assert summary == ValidationSummary(
        valid=0, invalid=0, excluded=0, problem_count=0, status=Status.DRAFT
    )


def test_child_staged_with_a_customer_of_another_batch_is_flagged(batch, importer):
    CustomerFactory(batch=batch)
    stranger = CustomerFactory(legacy_id="stranger-1")
    BalanceFactory(customer=stranger, batch=batch)
    MetricFactory(customer=stranger, batch=batch, period="this_year")

    summary = batch_validate(batch=batch, user=importer)

    def message(kind: str) -> str:
        values = {"kind": kind, "legacy_id": "stranger-1", "other": stranger.batch.name}
        return ERR_CHILD_ELSEWHERE % values

    assert problem_rows(batch) == {
        ("stranger-1", "balance", Code.MISSING_CUSTOMER, message("balance")),
        ("stranger-1", "metrics.this_year", Code.MISSING_CUSTOMER, message("metric")),
    }
    assert CustomerProblem.objects.filter(batch=batch, customer__isnull=True).count() == 2
    assert summary.valid == 1
    assert summary.status == Status.DRAFT


def test_validation_works_through_many_chunks(batch, importer, monkeypatch):
    monkeypatch.setattr(validation_problems, "CHUNK_SIZE", 2)
    sent_elsewhere("legacy-sent")
    CustomerFactory(batch=batch, legacy_id="legacy-sent")
    CustomerFactory(batch=batch, legacy_id="dup-1", email="dup@example.com")
    CustomerFactory.create_batch(3, batch=batch)
    CustomerFactory(batch=batch, legacy_id="dup-2", email="DUP@example.com")
    CustomerFactory(batch=batch, legacy_id="bad", email="broken")

    summary = batch_validate(batch=batch, user=importer)

    assert summary == ValidationSummary(
        valid=3, invalid=3, excluded=1, problem_count=4, status=Status.DRAFT
    )
    assert not batch.customers.filter(is_valid__isnull=True).exists()


def test_validation_query_count_does_not_grow_with_the_number_of_customers(importer):
    def queries_for(count: int) -> int:
        batch = BatchFactory(created_by=importer)
        CustomerFactory(batch=batch, email="broken")
        for customer in CustomerFactory.create_batch(count, batch=batch):
            BalanceFactory(customer=customer)
        with CaptureQueriesContext(connection) as captured:
            batch_validate(batch=batch, user=importer)
        return len(captured)

    assert queries_for(3) == queries_for(40)


@pytest.mark.skipif(
    not connection.features.has_select_for_update, reason="the database has no row locks"
)
def test_validation_locks_the_batch_row_first(batch, importer):
    CustomerFactory(batch=batch)
    with CaptureQueriesContext(connection) as captured:
        batch_validate(batch=batch, user=importer)
    statements = [q["sql"] for q in captured if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    assert "FOR UPDATE" in statements[0]
    assert "customers_stagingbatch" in statements[0]


def test_set_excluded_sends_a_validated_batch_back_to_draft(batch, importer):
    first, second = CustomerFactory.create_batch(2, batch=batch)
    batch_validate(batch=batch, user=importer)
    assert batch.status == Status.VALIDATED

    updated = customers_set_excluded(
        batch=batch, customer_ids=[first.pk], excluded=True, reason=" moved away ", user=importer
    )

    assert updated == 1
    first.refresh_from_db()
    assert first.is_excluded
    assert first.exclusion_reason == "moved away"
    assert batch.status == Status.DRAFT
    assert (batch.valid_count, batch.excluded_count) == (1, 1)

    customers_set_excluded(batch=batch, customer_ids=[first.pk], excluded=False, user=importer)

    first.refresh_from_db()
    assert not first.is_excluded
    assert first.exclusion_reason == ""
    assert (batch.valid_count, batch.excluded_count) == (2, 0)


def test_set_excluded_ignores_customers_of_other_batches(batch, importer):
    mine = CustomerFactory(batch=batch)
    theirs = CustomerFactory()

    updated = customers_set_excluded(
        batch=batch, customer_ids=[mine.pk, theirs.pk], excluded=True, user=importer
    )

    assert updated == 1
    theirs.refresh_from_db()
    assert not theirs.is_excluded


@pytest.mark.parametrize("status", [Status.APPROVED, Status.SUBMITTED])
def test_exclude_and_resend_are_refused_once_a_batch_is_approved(batch, importer, status):
    customer = CustomerFactory(batch=batch)
    StagingBatch.objects.filter(pk=batch.pk).update(status=status)

    with pytest.raises(BatchStateError):
        customers_set_excluded(
            batch=batch, customer_ids=[customer.pk], excluded=True, user=importer
        )
    with pytest.raises(BatchStateError):
        customers_set_resend(batch=batch, customer_ids=[customer.pk], resend=True, user=importer)
    customer.refresh_from_db()
    assert not customer.is_excluded
    assert not customer.resend


def test_exclusion_reason_longer_than_its_column_is_refused(batch, importer):
    customer = CustomerFactory(batch=batch)
    with pytest.raises(ValidationError) as raised:
        customers_set_excluded(
            batch=batch, customer_ids=[customer.pk], excluded=True, reason="x" * 256, user=importer
        )
    assert raised.value.messages == [ERR_REASON_TOO_LONG % {"max": 255}]
