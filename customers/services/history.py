"""What validation finds wrong with a batch's history (transactions and events), stored as
``CustomerProblem`` rows beside the customers' own.

- **Whose history.** Each row's customer is staged in the batch or was sent by an earlier
  batch. Rows are linked to their customer here (a transactions file may be staged before
  its customers file); a row whose customer is neither is a problem of the batch, like a
  balance of another batch's customer: stage the customer or delete the rows.
- **Each row** against the contract: its entry, as the request would carry it, through
  the strict history serializers (``customers.contract``).
- **The balance rule.** For each customer with transactions and each reward, the signed
  amounts add up exactly (in decimal) to the customer's staged balance for that reward, a
  reward missing from the balances counting as 0. A customer sent by an earlier batch is
  held to the balance that batch staged for it.
- **One request.** A customer's transactions go in one entry of one request, so a
  customer with more than ``MASIVO_TX_MAX_ITEMS`` cannot be sent.

A problem on a customer staged here makes it invalid (fix or exclude it; excluding a
customer leaves its history out). A problem of a customer not staged here blocks the
batch until its rows are fixed or deleted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, OuterRef, Subquery
from django.utils.translation import gettext_lazy as _

from console.messages import Message
from console.sums import decimal_sums
from customers.contract.history_check import HistoryEntryCheck
from customers.models import (
    CustomerProblem,
    StagedBalance,
    StagedCustomer,
    StagedTransaction,
    StagingBatch,
)
from customers.payload.history import (
    ENTRIES,
    EVENTS,
    HISTORY_KINDS,
    MODELS,
    TRANSACTIONS,
)
from customers.payload.writing import number_text
from customers.services.problems import CHUNK_SIZE, chunked, sent_elsewhere

Code = CustomerProblem.Code

# Kept for later readers, so without a plural form (console.messages): the count comes last.
ERR_HISTORY_ORPHAN = _(
    "Customer “%(legacy_id)s” is neither staged in this batch nor sent by an earlier one, "
    "but the %(kind)s file has rows of it (%(count)s). Stage the customer in this batch, "
    "or delete those rows."
)
ERR_UNRECONCILED = _(
    "The transactions of reward %(reward)s add up to %(total)s, but the balance is "
    "%(balance)s: a difference of %(difference)s. Fix the transactions or the balance so "
    "they match."
)
ERR_TOO_MANY_TRANSACTIONS = _(
    "Has %(count)s transactions; one request carries at most %(max)s, and a customer's "
    "transactions cannot be split over requests. Leave out the oldest ones or merge them."
)
ERR_ROW_PROBLEM = _("Row %(row)s of the %(kind)s file: %(message)s")
KIND_NAMES = {TRANSACTIONS: _("transactions"), EVENTS: _("events")}


def history_link(*, batch: StagingBatch) -> None:
    """Link each history row of ``batch`` to its customer staged in the batch (or to none,
    when it is no longer staged)."""
    staged = StagedCustomer.objects.filter(
        batch=batch, legacy_id=OuterRef("customer_legacy_id")
    ).values("pk")[:1]
    for model in MODELS.values():
        model.objects.filter(batch=batch).update(customer=Subquery(staged))


def _problem(
    batch, *, legacy_id: str, customer_id: int | None, field: str, code, message: Message
) -> CustomerProblem:
    return CustomerProblem.with_message(
        message,
        batch=batch,
        customer_id=customer_id,
        legacy_id=legacy_id,
        field=field,
        code=code,
    )


def _orphans(batch: StagingBatch) -> list[CustomerProblem]:
    """Rows whose customer is neither staged here nor sent before: one problem per
    customer and kind."""
    problems = []
    for kind, model in MODELS.items():
        counts = dict(
            model.objects.filter(batch=batch, customer__isnull=True)
            .values_list("customer_legacy_id")
            .annotate(n=Count("pk"))
            .order_by("customer_legacy_id")
        )
        for ids in chunked(sorted(counts)):
            sent = sent_elsewhere(batch, ids)
            for legacy_id in ids:
                if legacy_id in sent:
                    continue
                message = Message.of(
                    ERR_HISTORY_ORPHAN,
                    count=counts[legacy_id],
                    kind=Message.of(KIND_NAMES[kind]),
                    legacy_id=legacy_id,
                )
                problems.append(
                    _problem(
                        batch,
                        legacy_id=legacy_id,
                        customer_id=None,
                        field=kind,
                        code=Code.MISSING_CUSTOMER,
                        message=message,
                    )
                )
    return problems


def _row_problems(batch: StagingBatch) -> list[CustomerProblem]:
    """Each row's entry against the contract, named by its file row and field."""
    problems = []
    check = HistoryEntryCheck()
    for kind in HISTORY_KINDS:
        columns, build = ENTRIES[kind]
        rows = (
            MODELS[kind]
            .objects.filter(batch=batch)
            .exclude(customer__is_excluded=True)
            .order_by("pk")
            .values(*columns, "customer_id", "source_row")
        )
        for row in rows.iterator(chunk_size=CHUNK_SIZE):
            for found in check.problems(kind, build(row)):
                where = row["source_row"] if row["source_row"] is not None else "?"
                message = Message.of(
                    ERR_ROW_PROBLEM,
                    row=where,
                    kind=Message.of(KIND_NAMES[kind]),
                    message=found.untranslated,
                )
                problems.append(
                    _problem(
                        batch,
                        legacy_id=row["customer_legacy_id"],
                        customer_id=row["customer_id"],
                        field=f"{kind}.{found.field}"[:128],
                        code=found.code,
                        message=message,
                    )
                )
    return problems


def _sums(rows: Iterable[tuple]) -> dict[str, dict[str, Decimal]]:
    """legacy id -> reward -> total, from ``(legacy id, reward, total)`` rows."""
    totals: dict[str, dict[str, Decimal]] = defaultdict(dict)
    for legacy_id, reward, total in rows:
        totals[legacy_id][str(reward)] = total or Decimal(0)
    return totals


def transaction_totals(*, batch: StagingBatch) -> dict[str, dict[str, Decimal]]:
    """legacy id -> reward -> the sum of its transactions' amounts in ``batch`` (customers
    not excluded)."""
    rows = StagedTransaction.objects.filter(batch=batch, reward_id__isnull=False).exclude(
        customer__is_excluded=True
    )
    return _sums(decimal_sums(rows, by=("customer_legacy_id", "reward_id"), field="amount"))


BALANCE_KEYS = ("customer__legacy_id", "reward_id")


def balance_totals(*, batch: StagingBatch, legacy_ids: Iterable[str]) -> dict:
    """legacy id -> reward -> balance: staged in ``batch`` for its customers, and for
    customers sent by an earlier batch, the balance that batch sent."""
    ids = list(legacy_ids)
    here = StagedBalance.objects.filter(batch=batch, customer__legacy_id__in=ids)
    totals = _sums(decimal_sums(here, by=BALANCE_KEYS, field="amount"))
    missing = [legacy_id for legacy_id in ids if legacy_id not in totals]
    staged_here = set(
        StagedCustomer.objects.filter(batch=batch, legacy_id__in=missing).values_list(
            "legacy_id", flat=True
        )
    )
    earlier = sent_elsewhere(batch, [i for i in missing if i not in staged_here])
    for legacy_id, (other_batch, _name) in earlier.items():
        rows = StagedBalance.objects.filter(batch_id=other_batch, customer__legacy_id=legacy_id)
        totals.update(_sums(decimal_sums(rows, by=BALANCE_KEYS, field="amount")))
    return totals


def history_mismatches(
    *, batch: StagingBatch, totals: dict[str, dict[str, Decimal]], known: set[str] | None = None
) -> list[tuple[str, str, Decimal, Decimal]]:
    """``(legacy id, reward, balance, total)`` for each customer of ``totals`` (legacy id
    -> reward -> sum of its transactions) and reward whose sum is not its balance (a reward
    missing from the balances counts as 0); only customers in ``known``, when given."""
    found = []
    for ids in chunked(sorted(totals)):
        balances = balance_totals(batch=batch, legacy_ids=ids)
        for legacy_id in ids:
            if known is not None and legacy_id not in known:
                continue
            held = balances.get(legacy_id, {})
            for reward, total in sorted(totals[legacy_id].items()):
                balance = held.get(reward, Decimal(0))
                if total != balance:
                    found.append((legacy_id, reward, balance, total))
    return found


def _unreconciled(batch: StagingBatch) -> list[CustomerProblem]:
    """The balance rule (see the module), one problem per customer and reward; a customer
    neither staged here nor sent before has its problem already."""
    transactions = transaction_totals(batch=batch)
    customers = dict(
        StagedCustomer.objects.filter(batch=batch, legacy_id__in=list(transactions)).values_list(
            "legacy_id", "pk"
        )
    )
    others = [legacy_id for legacy_id in transactions if legacy_id not in customers]
    known = set(customers) | set(sent_elsewhere(batch, others))
    return [
        _problem(
            batch,
            legacy_id=legacy_id,
            customer_id=customers.get(legacy_id),
            field="transactions",
            code=Code.UNRECONCILED,
            message=Message.of(
                ERR_UNRECONCILED,
                reward=reward,
                total=number_text(total),
                balance=number_text(balance),
                difference=number_text(total - balance),
            ),
        )
        for legacy_id, reward, balance, total in history_mismatches(
            batch=batch, totals=transactions, known=known
        )
    ]


def _too_many(batch: StagingBatch) -> list[CustomerProblem]:
    """Customers with more transactions than one request carries."""
    limit = settings.MASIVO_TX_MAX_ITEMS
    rows = (
        StagedTransaction.objects.filter(batch=batch)
        .exclude(customer__is_excluded=True)
        .values_list("customer_legacy_id", "customer_id")
        .annotate(n=Count("pk"))
        .filter(n__gt=limit)
        .order_by("customer_legacy_id")
    )
    return [
        _problem(
            batch,
            legacy_id=legacy_id,
            customer_id=customer_id,
            field="transactions",
            code=Code.INVALID,
            message=Message.of(ERR_TOO_MANY_TRANSACTIONS, count=n, max=limit),
        )
        for legacy_id, customer_id, n in rows
    ]


def history_problems_record(*, batch: StagingBatch) -> tuple[int, int]:
    """Check the history of ``batch`` (locked by the caller, its customers' problems just
    recorded): store the problems, make the customers they concern invalid. Returns how
    many problems, and how many of them belong to no customer staged here (they block
    the batch)."""
    history_link(batch=batch)
    problems = [*_orphans(batch), *_row_problems(batch), *_unreconciled(batch), *_too_many(batch)]
    CustomerProblem.objects.bulk_create(problems, batch_size=CHUNK_SIZE)
    invalid = sorted({p.customer_id for p in problems if p.customer_id is not None})
    for pks in chunked(invalid):
        StagedCustomer.objects.filter(pk__in=pks).update(is_valid=False)
    unattached = sum(1 for p in problems if p.customer_id is None)
    return len(problems), unattached
