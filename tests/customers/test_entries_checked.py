"""Validation need not check again the entries every import checked, as long as nothing
changed since: whatever changes a staged row, by whatever door, and whatever changes the
contract, validation still finds every problem a full check finds."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import F

from customers.contract.bounds import METADATA_MAX_BYTES
from customers.models import (
    OnProblems,
    StagedBalance,
    StagedCustomer,
    StagedDevice,
    StagedMetric,
    StagingBatch,
)
from customers.services import batch_validate, customers_set_excluded
from customers.services.entries import entries_rechecked
from customers.staging import batch_stage_file
from tests.customers.importing import to_csv
from tests.factories import BatchFactory, CustomerFactory

pytestmark = pytest.mark.django_db

CUSTOMERS = 12
REWARD = "3c90c3cc-0d44-4b50-8888-8dd25736052a"


def _files(*, emails: dict[int, str] | None = None) -> dict[str, bytes]:
    """The four files of ``CUSTOMERS`` customers, each with a balance, a device and a
    metrics period; ``emails``: some customers' emails instead of their own."""
    emails = emails or {}
    ids = [f"C{n:03d}" for n in range(CUSTOMERS)]
    return {
        "customers": to_csv(
            [["id", "name", "email", "gender", "registration_date", "status"]]
            + [
                [
                    legacy_id,
                    f"Customer {n}",
                    emails.get(n, f"c{n}@example.com"),
                    "FEMALE" if n % 2 else "MALE",
                    "2023-11-07T05:31:56Z",
                    "ACTIVE",
                ]
                for n, legacy_id in enumerate(ids)
            ]
        ),  # fmt: skip
        "balances": to_csv(
            [["customer_id", "reward_id", "amount", "brand_id"]]
            + [[legacy_id, REWARD, "12.5", "brand-1"] for legacy_id in ids]
        ),
        "devices": to_csv(
            [["customer_id", "device_token", "platform", "model"]]
            + [[legacy_id, f"fcm:{legacy_id}", "ios", "iPhone"] for legacy_id in ids]
        ),
        "metrics": to_csv(
            [["customer_id", "period", "spend_total", "number_of_purchases"]]
            + [[legacy_id, "lifetime", "10.5", "3"] for legacy_id in ids]
        ),
    }


def _stage_all(batch, user, files: dict[str, bytes], **options) -> None:
    for kind, content in files.items():
        result = batch_stage_file(
            batch=batch, kind=kind, file_name=f"{kind}.csv", content=content, user=user,
            **options,
        )  # fmt: skip
        assert result.staged, result.messages()


def _known(batch: StagingBatch) -> bool:
    """Whether the batch's record says its entries are known to pass (at its version)."""
    batch.refresh_from_db()
    return batch.entries_checked_version == batch.content_version


def _forget(batch: StagingBatch) -> None:
    """Clear the record, so that the next validation checks every entry."""
    StagingBatch.objects.filter(pk=batch.pk).update(entries_checked_version=None)


def _problems(batch: StagingBatch) -> list[tuple]:
    return sorted(
        batch.problems.values_list("customer__legacy_id", "legacy_id", "field", "code", "message")
    )


def _validities(batch: StagingBatch) -> list[tuple]:
    return sorted(batch.customers.values_list("legacy_id", "is_valid", "is_excluded"))


def _validated_both_ways(batch, user) -> tuple:
    """Validate with the record as it stands, then again checking every entry; both
    outcomes (summary, problems, each customer's validity)."""
    trusting = batch_validate(batch=batch, user=user)
    first = (trusting, _problems(batch), _validities(batch))
    _forget(batch)
    full = batch_validate(batch=batch, user=user)
    return first, (full, _problems(batch), _validities(batch))


def test_clean_imports_leave_the_entries_known_and_validation_agrees_with_a_full_check(
    batch, importer
):
    # Two customers share an email (in another case): a problem across rows, which
    # validation finds whether or not it checks the entries again.
    _stage_all(
        batch, importer, _files(emails={3: "twin@example.com", 7: "TWIN@example.com"}),
        on_problems=OnProblems.FLAG,
    )  # fmt: skip
    assert _known(batch)

    trusting, full = _validated_both_ways(batch, importer)

    assert trusting == full
    summary, problems, _validity = trusting
    assert (summary.valid, summary.invalid) == (CUSTOMERS - 2, 2)
    assert [(p[0], p[2], p[3]) for p in problems] == [
        ("C003", "email", "duplicate_email"),
        ("C007", "email", "duplicate_email"),
    ]
    assert _known(batch)


def test_history_imports_keep_the_entries_known(batch, importer, samples):
    _stage_all(batch, importer, _files())
    result = batch_stage_file(
        batch=batch, kind="transactions", file_name="transactions.csv",
        content=samples / "transactions.csv", user=importer, on_problems=OnProblems.FLAG,
    )  # fmt: skip
    assert result.staged
    assert _known(batch)


def test_an_import_with_a_broken_entry_leaves_them_unknown_until_a_validation_passes(
    batch, importer
):
    _stage_all(batch, importer, _files(emails={4: "c4-at-example.com"}), on_problems="flag")
    assert not _known(batch)

    summary = batch_validate(batch=batch, user=importer)
    assert summary.invalid == 1
    assert not _known(batch)

    customer = batch.customers.get(legacy_id="C004")
    customer.email = "c4@example.com"
    customer.save()
    assert batch_validate(batch=batch, user=importer).is_validated
    assert _known(batch)


# A value each staged table stores but the contract refuses.
BROKEN = {
    StagedCustomer: ("email", "not-an-email"),
    StagedBalance: ("brand_id", "   "),
    StagedDevice: ("platform", "blackberry"),
    StagedMetric: ("period", "bogus"),
}


# Where validation says the problem is.
SAID = {
    StagedCustomer: "email",
    StagedBalance: "brand_id",
    StagedDevice: "device_info.platform",
    StagedMetric: "metrics.bogus",
}


def _break(model, door: str) -> None:
    """Give one row of ``model`` the value the contract refuses, through ``door``."""
    column, value = BROKEN[model]
    row = model.objects.order_by("pk").first()
    if door == "save":
        setattr(row, column, value)
        row.save()
    elif door == "update":
        model.objects.filter(pk=row.pk).update(**{column: value})
    elif door == "sql":
        table = connection.ops.quote_name(model._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET {connection.ops.quote_name(column)} = %s WHERE id = %s",  # noqa: S608
                [value, row.pk],
            )
    else:  # a new row, written by SQL, next to the others
        customer = StagedCustomer.objects.order_by("pk").first()
        values = {
            StagedCustomer: {"legacy_id": "C999", "email": value, "name": "New",
                             "registration_date": customer.registration_date},
            StagedBalance: {"customer": customer, "reward_id": uuid.UUID(REWARD),
                            "amount": Decimal(1), "brand_id": value},
            StagedDevice: {"customer": customer, "device_token": "fcm:new", "platform": value},
            StagedMetric: {"customer": customer, "period": value},
        }[model]  # fmt: skip
        model.objects.bulk_create([model(batch_id=customer.batch_id, **values)])


@pytest.mark.parametrize("door", ["save", "update", "sql", "insert"])
@pytest.mark.parametrize("model", list(BROKEN), ids=lambda model: model.__name__)
def test_a_row_changed_after_its_import_is_checked_again_whatever_the_door(
    batch, importer, model, door
):
    _stage_all(batch, importer, _files())
    assert _known(batch)

    _break(model, door)

    summary = batch_validate(batch=batch, user=importer)
    assert summary.invalid == 1
    assert not summary.is_validated
    problems = _problems(batch)
    assert len(problems) == 1
    assert SAID[model] in problems[0][2]


def test_a_validated_batch_edited_then_validated_again_checks_its_entries_again(batch, importer):
    _stage_all(batch, importer, _files())
    assert batch_validate(batch=batch, user=importer).is_validated
    assert _known(batch)

    StagedBalance.objects.filter(pk=StagedBalance.objects.order_by("pk")[0].pk).update(
        brand_id="   "
    )
    assert not batch_validate(batch=batch, user=importer).is_validated

    StagedBalance.objects.update(brand_id="brand-2")
    customers_set_excluded(
        batch=batch, customer_ids=[batch.customers.first().pk], excluded=True, user=importer
    )
    summary = batch_validate(batch=batch, user=importer)
    assert summary.is_validated
    assert (summary.valid, summary.excluded) == (CUSTOMERS - 1, 1)
    assert _known(batch)


def test_a_change_of_the_contract_has_every_entry_checked_again(batch, importer, settings):
    _stage_all(batch, importer, _files())
    assert _known(batch)

    settings.MASIVO_GENDERS = ["FEMALE", "OTHER"]  # MALE no longer accepted

    summary = batch_validate(batch=batch, user=importer)
    assert summary.invalid == CUSTOMERS // 2
    assert {p[2] for p in _problems(batch)} == {"gender"}


def test_a_row_of_another_batch_in_a_customers_entry_is_checked(batch, importer):
    _stage_all(batch, importer, _files())
    assert _known(batch)
    customer = batch.customers.get(legacy_id="C005")
    other = BatchFactory(name="other")

    # Staged in the other batch, yet part of this customer's entry.
    StagedBalance.objects.create(
        batch=other, customer=customer, reward_id=uuid.UUID(REWARD), amount=1, brand_id="  "
    )

    summary = batch_validate(batch=batch, user=importer)
    assert summary.invalid == 1
    assert [(p[0], p[2]) for p in _problems(batch)] == [("C005", "balance[1].brand_id")]


def test_customers_with_large_metadata_are_checked_in_any_case(batch):
    small, large, none = (CustomerFactory(batch=batch) for _ in range(3))
    StagedCustomer.objects.filter(pk=small.pk).update(metadata={"tier": "gold"})
    StagedCustomer.objects.filter(pk=large.pk).update(
        metadata={"notes": "é" * (METADATA_MAX_BYTES // 4 + 10)}  # 2 bytes a character
    )
    StagedCustomer.objects.filter(pk=none.pk).update(metadata=None)

    assert entries_rechecked(batch) == {large.pk}


def test_validation_records_the_version_it_leaves(batch, importer):
    _stage_all(batch, importer, _files())
    batch_validate(batch=batch, user=importer)
    batch.refresh_from_db()
    assert batch.entries_checked_version == batch.validated_version == batch.content_version
    assert StagingBatch.objects.filter(
        pk=batch.pk, entries_checked_version=F("content_version")
    ).exists()
