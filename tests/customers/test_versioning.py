"""The version of a batch's staged data moves on every change, whatever the door, and
approval and submission refuse a batch whose rows changed since the step before."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.db import connection, models
from django.db.models import F

from customers.models import (
    StagedBalance,
    StagedCustomer,
    StagedDevice,
    StagedEvent,
    StagedMetric,
    StagedTransaction,
    StagingBatch,
)
from customers.services import BatchStateError, batch_approve, batch_validate
from customers.versioning import BOOKKEEPING
from migrations_jobs.models import MigrationJob
from migrations_jobs.services import job_start
from tests.factories import (
    BalanceFactory,
    BatchFactory,
    CustomerFactory,
    DeviceFactory,
    MetricFactory,
)
from tests.worker import approved_batch

POINTS = uuid.UUID("3c90c3cc-0d44-4b50-8888-8dd25736052a")
WHEN = dt.datetime(2023, 1, 2, 10, 0, tzinfo=dt.UTC)
STAGED = (
    StagedCustomer,
    StagedBalance,
    StagedDevice,
    StagedMetric,
    StagedTransaction,
    StagedEvent,
)


def version(batch: StagingBatch) -> int:
    return StagingBatch.objects.values_list("content_version", flat=True).get(pk=batch.pk)


def recorded(batch: StagingBatch) -> int:
    """Record the batch's version as validation does; returns it."""
    StagingBatch.objects.filter(pk=batch.pk).update(validated_version=F("content_version"))
    return version(batch)


def one_of_each(batch: StagingBatch) -> dict[type[models.Model], models.Model]:
    """A customer of ``batch`` with one row of every kind of staged child."""
    customer = CustomerFactory(batch=batch, is_valid=True)
    common = {"batch": batch, "customer": customer, "customer_legacy_id": customer.legacy_id}
    return {
        StagedCustomer: customer,
        StagedBalance: BalanceFactory(customer=customer, reward_id=POINTS, amount=Decimal(10)),
        StagedDevice: DeviceFactory(customer=customer),
        StagedMetric: MetricFactory(customer=customer),
        StagedTransaction: StagedTransaction.objects.create(
            **common, reward_id=POINTS, type="ACCUMULATION", amount=Decimal(10), issued_at=WHEN
        ),
        StagedEvent: StagedEvent.objects.create(
            **common, type="PURCHASE", issued_at=WHEN, resolved_at=WHEN
        ),
    }


def other_value(field: models.Field, current, *, other: dict):
    """A value of ``field`` that differs from ``current`` and that the column accepts."""
    if isinstance(field, models.ForeignKey):
        return other[field.related_model].pk
    if isinstance(field, models.AutoField):
        return current + 1000
    if isinstance(field, models.BooleanField):
        return not current
    if isinstance(field, models.IntegerField):
        return (current or 0) + 1
    if isinstance(field, models.DecimalField):
        return (current or Decimal(0)) + Decimal("1.5")
    if isinstance(field, models.DateTimeField):
        return dt.datetime(2001, 2, 3, 4, 5, 6, tzinfo=dt.UTC)
    if isinstance(field, models.UUIDField):
        return uuid.uuid4()
    if isinstance(field, models.JSONField):
        return {"changed": [1, 2]}
    if field.choices:
        return next(value for value, _label in field.choices if value != current)
    return f"changed {current}"[: field.max_length]


def columns() -> list[tuple[type[models.Model], models.Field]]:
    return [(model, field) for model in STAGED for field in model._meta.concrete_fields]


@pytest.mark.parametrize(
    ("model", "field"),
    columns(),
    ids=[f"{model.__name__}.{field.column}" for model, field in columns()],
)
def test_raw_sql_on_any_column_moves_the_version_unless_it_is_bookkeeping(importer, model, field):
    batch = BatchFactory(created_by=importer)
    row = one_of_each(batch)[model]
    elsewhere = BatchFactory(created_by=importer)
    other = {
        StagingBatch: elsewhere,
        StagedCustomer: CustomerFactory(batch=batch),
    }
    if model is StagedCustomer and field.primary_key:
        row = CustomerFactory(batch=batch)  # one no child row points to
    value = other_value(field, getattr(row, field.attname), other=other)
    before, before_elsewhere = recorded(batch), recorded(elsewhere)

    with connection.cursor() as cursor:
        table, column = model._meta.db_table, connection.ops.quote_name(field.column)
        cursor.execute(
            f"UPDATE {table} SET {column} = %s WHERE id = %s",  # noqa: S608 - test's own names
            [field.get_db_prep_value(value, connection), row.pk],
        )

    if field.name in BOOKKEEPING[model.__name__]:
        assert version(batch) == before
    else:
        assert version(batch) != before
    if field.name == "batch":  # the batch the row moved to changed too
        assert version(elsewhere) != before_elsewhere


@pytest.mark.parametrize("model", STAGED, ids=lambda model: model.__name__)
def test_writing_a_value_that_is_already_there_moves_nothing(importer, model):
    batch = BatchFactory(created_by=importer)
    row = one_of_each(batch)[model]
    before = recorded(batch)

    model.objects.filter(pk=row.pk).update(batch=batch)
    row.save()

    assert version(batch) == before


def test_inserts_and_deletes_by_every_door_move_the_version(importer):
    batch = BatchFactory(created_by=importer)
    customers = CustomerFactory.create_batch(3, batch=batch)

    def raw_insert():
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO customers_stageddevice (batch_id, customer_id, device_token,"
                " platform, model, os_version) VALUES (%s, %s, 'fcm:raw', 'ios', '', '')",
                [batch.pk, customers[0].pk],
            )

    def raw_delete():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM customers_stagedcustomer WHERE id = %s", [customers[2].pk])

    doors = {
        "bulk_create": lambda: StagedCustomer.objects.bulk_create(
            [StagedCustomer(batch=batch, legacy_id="bulk")]
        ),
        "raw insert": raw_insert,
        "queryset delete": lambda: StagedDevice.objects.filter(batch=batch).delete(),
        "model delete": lambda: customers[1].delete(),
        "raw delete": raw_delete,
    }
    for door, write in doors.items():
        before = recorded(batch)
        write()
        assert version(batch) != before, door


def test_changes_after_a_recorded_version_move_it_once_until_it_is_recorded_again(importer):
    batch = BatchFactory(created_by=importer)
    customer = CustomerFactory(batch=batch)
    assert version(batch) == 0  # nothing recorded yet: nothing to tell apart

    before = recorded(batch)
    for amount in range(1, 4):
        BalanceFactory(customer=customer, reward_id=uuid.uuid4(), amount=Decimal(amount))
    moved = version(batch)
    StagingBatch.objects.filter(pk=batch.pk).update(approved_version=moved)
    StagedBalance.objects.filter(batch=batch).update(amount=Decimal(9))

    assert moved == before + 1  # three inserts, one move: the batch's row is written once
    assert version(batch) == moved + 1  # the approved version was recorded: it moves again


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has no TRUNCATE")
def test_truncating_a_staged_table_moves_every_batch(importer):
    batches = [BatchFactory(created_by=importer) for _ in range(2)]
    for batch in batches:
        one_of_each(batch)
    before = [recorded(batch) for batch in batches]

    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the inserts' checks, done now
        cursor.execute("TRUNCATE customers_stageddevice")

    assert all(version(b) > old for b, old in zip(batches, before, strict=True))


def test_an_edit_of_another_batch_leaves_this_one_alone(importer):
    mine, theirs = BatchFactory(created_by=importer), BatchFactory(created_by=importer)
    one_of_each(mine)
    row = one_of_each(theirs)[StagedBalance]
    before, _theirs = recorded(mine), recorded(theirs)

    StagedBalance.objects.filter(pk=row.pk).update(amount=Decimal("99"))

    assert version(mine) == before


def _change_by_sql(batch: StagingBatch) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE customers_stagedcustomer SET name = 'Changed' WHERE batch_id = %s",
            [batch.pk],
        )


def _change_by_update(batch: StagingBatch) -> None:
    StagedCustomer.objects.filter(batch=batch).update(email="changed@example.com")


def _add_a_device(batch: StagingBatch) -> None:
    DeviceFactory(customer=batch.customers.first())


def _delete_a_customer(batch: StagingBatch) -> None:
    batch.customers.order_by("pk").first().delete()


def _exclude_by_save(batch: StagingBatch) -> None:
    customer = batch.customers.first()
    customer.is_excluded = True
    customer.save()


def _add_a_transaction(batch: StagingBatch) -> None:
    customer = batch.customers.first()
    StagedTransaction.objects.create(
        batch=batch,
        customer=customer,
        customer_legacy_id=customer.legacy_id,
        reward_id=POINTS,
        type="ACCUMULATION",
        amount=Decimal(1),
        issued_at=WHEN,
    )


CHANGES = [
    _change_by_sql,
    _change_by_update,
    _add_a_device,
    _delete_a_customer,
    _exclude_by_save,
    _add_a_transaction,
]


@pytest.mark.parametrize("change", CHANGES, ids=lambda change: change.__name__.strip("_"))
def test_a_batch_changed_after_approval_is_refused_at_submit(importer, approver, change):
    batch = approved_batch(creator=importer, approver=approver, size=3)

    change(batch)

    with pytest.raises(BatchStateError) as refused:
        job_start(batch=batch, user=approver)
    assert refused.value.code == "changed"
    assert "changed after it was approved" in str(refused.value.messages[0])
    batch.refresh_from_db()
    assert batch.status == StagingBatch.Status.APPROVED
    assert not MigrationJob.objects.exists()


@pytest.mark.parametrize("change", CHANGES, ids=lambda change: change.__name__.strip("_"))
def test_a_batch_changed_after_validation_is_refused_at_approval(importer, approver, change):
    batch = BatchFactory(created_by=importer)
    CustomerFactory.create_batch(3, batch=batch)
    assert batch_validate(batch=batch, user=importer).status == StagingBatch.Status.VALIDATED

    change(batch)

    with pytest.raises(BatchStateError) as refused:
        batch_approve(batch=batch, user=approver)
    assert refused.value.code == "changed"
    assert "validate it again" in str(refused.value.messages[0])
    batch.refresh_from_db()
    assert batch.status == StagingBatch.Status.VALIDATED


def test_validated_then_approved_unchanged_is_submitted(importer, approver):
    batch = BatchFactory(created_by=importer)
    one_of_each(batch)
    CustomerFactory.create_batch(2, batch=batch)
    batch_validate(batch=batch, user=importer)
    batch = batch_approve(batch=batch, user=approver)
    assert batch.approved_version == batch.validated_version == version(batch)

    job = job_start(batch=batch, user=approver)

    assert job.total_customers == 3


def test_what_sending_records_on_the_rows_does_not_count_as_a_change(importer, approver):
    batch = approved_batch(creator=importer, approver=approver, size=2)
    one_of_each(batch)
    StagingBatch.objects.filter(pk=batch.pk).update(approved_version=version(batch))
    before = version(batch)

    StagedCustomer.objects.filter(batch=batch).update(
        outcome="sent", outcome_at=WHEN, outcome_job_id=1, resend=True
    )
    StagedTransaction.objects.filter(batch=batch).update(sent_at=WHEN)
    StagedEvent.objects.filter(batch=batch).update(sent_at=WHEN)

    assert version(batch) == before
