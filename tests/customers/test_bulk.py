"""Writing many staged rows at once (COPY on PostgreSQL, bulk_create elsewhere): every
value reads back as Django would have written it, and the caller's transaction holds."""

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from customers import bulk
from customers.bulk import rows_insert
from customers.models import Outcome, StagedBalance, StagedCustomer
from customers.staging import batch_stage_file

REWARD = uuid.UUID("3c90c3cc-0d44-4b50-8888-8dd25736052a")


def test_values_read_back_as_written(batch):
    registered = dt.datetime(2023, 11, 7, 5, 31, 56, 123456, tzinfo=dt.UTC)
    awkward = 'tab\there, new\nline, back\\slash, "quotes", ñandú, \\N, 😀'

    written = rows_insert(
        model=StagedCustomer,
        rows=[
            {
                "batch_id": batch.pk,
                "legacy_id": "000123",
                "name": awkward,
                "email": "ana@example.com",
                "registration_date": registered,
                "metadata": {"source": "legacy-crm", "tiers": [1, 2], "note": awkward},
                "is_valid": True,
            },
            {"batch_id": batch.pk, "legacy_id": "000124", "metadata": None},
        ],
    )

    assert written == 2
    first, second = StagedCustomer.objects.filter(batch=batch).order_by("legacy_id")
    assert first.legacy_id == "000123"
    assert first.name == awkward
    assert first.registration_date == registered
    assert first.metadata == {"source": "legacy-crm", "tiers": [1, 2], "note": awkward}
    assert first.is_valid is True
    # Fields a row leaves out take their defaults.
    assert second.name == ""
    assert second.metadata is None
    assert second.registration_date is None
    assert second.is_excluded is False
    assert second.is_valid is None
    assert second.outcome == Outcome.NOT_SENT


def test_decimals_uuids_and_foreign_keys_read_back_exactly(batch):
    customer = StagedCustomer.objects.create(batch=batch, legacy_id="c-1")
    expires = dt.datetime(2026, 11, 7, 5, 31, 56, tzinfo=dt.UTC)

    rows_insert(
        model=StagedBalance,
        rows=[
            {
                "batch_id": batch.pk,
                "customer_id": customer.pk,
                "reward_id": REWARD,
                "amount": Decimal("50.20"),
                "expiration_date": expires,
            },
            {
                "batch_id": batch.pk,
                "customer_id": customer.pk,
                "reward_id": str(REWARD).upper(),
                "amount": 7,
            },
            {
                "batch_id": batch.pk,
                "customer_id": customer.pk,
                "reward_id": REWARD,
                "amount": Decimal("-123456789.123456"),
            },
        ],
    )

    balances = list(StagedBalance.objects.filter(customer=customer).order_by("pk"))
    assert [b.amount for b in balances] == [Decimal("50.2"), 7, Decimal("-123456789.123456")]
    assert [b.reward_id for b in balances] == [REWARD, REWARD, REWARD]
    assert balances[0].expiration_date == expires
    assert balances[1].expiration_date is None


def test_no_rows_write_nothing(batch):
    assert rows_insert(model=StagedCustomer, rows=[]) == 0
    assert not StagedCustomer.objects.exists()


def _write_then_fail(batch) -> None:
    with transaction.atomic():
        rows_insert(
            model=StagedCustomer,
            rows=[{"batch_id": batch.pk, "legacy_id": f"c-{n}"} for n in range(50)],
        )
        raise RuntimeError("the import failed after writing")


def test_rows_belong_to_the_callers_transaction(batch):
    with pytest.raises(RuntimeError):
        _write_then_fail(batch)

    assert not StagedCustomer.objects.exists()


def test_a_duplicate_raises_integrity_error_and_writes_nothing(batch):
    StagedCustomer.objects.create(batch=batch, legacy_id="c-2")

    with pytest.raises(IntegrityError), transaction.atomic():
        rows_insert(
            model=StagedCustomer,
            rows=[{"batch_id": batch.pk, "legacy_id": f"c-{n}"} for n in range(5)],
        )

    assert list(StagedCustomer.objects.values_list("legacy_id", flat=True)) == ["c-2"]


def _planner_rows(model) -> float:
    """How many rows PostgreSQL's planner believes ``model``'s table holds."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [model._meta.db_table]
        )
        return cursor.fetchone()[0]


on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="statistics are renewed on PostgreSQL only"
)


@on_postgresql
def test_a_large_import_renews_the_planners_statistics_once_it_commits(
    batch, importer, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(bulk, "ANALYZE_AFTER_ROWS", 30)
    content = "id,name\n" + "".join(f"c{n},Customer {n}\n" for n in range(30))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        result = batch_stage_file(
            batch=batch,
            kind="customers",
            file_name="c.csv",
            content=content.encode(),
            user=importer,
            on_problems="flag",  # rows without an email or a registration date still stage
        )
    assert not result.has_errors()
    assert len(callbacks) == 1
    assert _planner_rows(StagedCustomer) == 30


@on_postgresql
def test_a_small_import_leaves_the_statistics_to_autovacuum(
    batch, importer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        result = batch_stage_file(
            batch=batch,
            kind="customers",
            file_name="c.csv",
            content=b"id\nc1\n",
            user=importer,
            on_problems="flag",
        )
    assert result.staged == {"customers": 1}
    assert callbacks == []
