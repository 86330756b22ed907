"""The reconciliation report of a batch: its history against its balances, before anything
is sent and after.

Per reward: the balances and the transactions staged from the files (every row), what the
batch will send (customers valid and not excluded; the history of customers an earlier
batch sent), and what Masivo accepted (balances of the customers sent, transactions of
the requests it accepted). Then the
customers whose transactions do not add up to their balance, those with history but no
balance, and those with a balance but no transactions. Validation refuses a batch with a
mismatch (``customers.services.history``); the report shows the whole picture, on the
batch page, in the API, as CSV and through ``batch_reconcile``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from console.exports import csv_lines
from console.sums import decimal_sums
from customers.models import Outcome, StagedBalance, StagedTransaction, StagingBatch
from customers.payload.history import SENT_ROWS
from customers.payload.writing import number_text
from customers.services.history import balance_totals, history_mismatches, transaction_totals
from customers.services.problems import sent_elsewhere

ZERO = Decimal(0)


@dataclass(frozen=True)
class RewardTotals:
    reward_id: str
    balances_in_files: Decimal = ZERO
    transactions_in_files: Decimal = ZERO
    balances_to_send: Decimal = ZERO
    transactions_to_send: Decimal = ZERO
    balances_sent: Decimal = ZERO
    transactions_sent: Decimal = ZERO

    @property
    def is_matched(self) -> bool:
        """Whether what will be sent of the history matches what will be sent of the
        balances, for this reward."""
        return self.balances_to_send == self.transactions_to_send


@dataclass(frozen=True)
class Mismatch:
    legacy_id: str
    reward_id: str
    balance: Decimal
    total: Decimal

    @property
    def difference(self) -> Decimal:
        return self.total - self.balance


@dataclass(frozen=True)
class Reconciliation:
    rewards: list[RewardTotals] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)
    history_without_balance: list[str] = field(default_factory=list)
    balance_without_transactions: list[str] = field(default_factory=list)

    @property
    def has_history(self) -> bool:
        return any(r.transactions_in_files for r in self.rewards) or bool(
            self.history_without_balance
        )

    @property
    def is_matched(self) -> bool:
        return not self.mismatches


def _by_reward(queryset: QuerySet, amount: str = "amount") -> dict[str, Decimal]:
    rows = decimal_sums(queryset, by=("reward_id",), field=amount)
    return {str(reward): total or ZERO for reward, total in rows if reward is not None}


def _mismatches(batch: StagingBatch, transactions: dict) -> list[Mismatch]:
    return [Mismatch(*found) for found in history_mismatches(batch=batch, totals=transactions)]


def batch_reconciliation(*, batch: StagingBatch) -> Reconciliation:
    """The report (see the module) of ``batch``, as the database holds it now."""
    balances = StagedBalance.objects.filter(batch=batch)
    history = StagedTransaction.objects.filter(batch=batch)
    columns = {
        "balances_in_files": _by_reward(balances),
        "transactions_in_files": _by_reward(history),
        "balances_to_send": _by_reward(
            balances.filter(customer__is_valid=True, customer__is_excluded=False)
        ),
        "transactions_to_send": _by_reward(history.filter(SENT_ROWS)),
        "balances_sent": _by_reward(balances.filter(customer__outcome=Outcome.SENT)),
        "transactions_sent": _by_reward(history.filter(sent_at__isnull=False)),
    }
    rewards = sorted({reward for totals in columns.values() for reward in totals})
    totals = [
        RewardTotals(reward, **{name: col.get(reward, ZERO) for name, col in columns.items()})
        for reward in rewards
    ]
    sums = transaction_totals(batch=batch)
    with_history = set(history.values_list("customer_legacy_id", flat=True).distinct())
    with_balance = set(balances.values_list("customer__legacy_id", flat=True).distinct())
    sent_before = set(sent_elsewhere(batch, sorted(with_history - with_balance)))
    held_before = {
        legacy_id
        for legacy_id, rewards_held in balance_totals(
            batch=batch, legacy_ids=sorted(sent_before)
        ).items()
        if rewards_held
    }
    return Reconciliation(
        rewards=totals,
        mismatches=_mismatches(batch, sums),
        history_without_balance=sorted(with_history - with_balance - held_before),
        balance_without_transactions=sorted(with_balance - with_history),
    )


def _amount(value: Decimal) -> str:
    return number_text(value)


REWARD_HEADERS = (
    _("reward"),
    _("balances in the files"),
    _("transactions in the files"),
    _("balances to send"),
    _("transactions to send"),
    _("balances sent"),
    _("transactions sent"),
)
MISMATCH_HEADERS = (_("customer"), _("reward"), _("balance"), _("transactions"), _("difference"))


def reconciliation_rows(report: Reconciliation) -> Iterator[list]:
    """The report's rows after the header: the totals per reward, then one line per
    mismatch, then the customers with history but no balance and the reverse (each
    section with its own header line)."""
    for r in report.rewards:
        amounts = (
            r.balances_in_files,
            r.transactions_in_files,
            r.balances_to_send,
            r.transactions_to_send,
            r.balances_sent,
            r.transactions_sent,
        )
        yield [r.reward_id, *map(_amount, amounts)]
    yield []
    yield [str(h) for h in MISMATCH_HEADERS]
    for m in report.mismatches:
        yield [m.legacy_id, m.reward_id, *map(_amount, (m.balance, m.total, m.difference))]
    for title, ids in (
        (_("customers with history but no balance"), report.history_without_balance),
        (_("customers with a balance but no transactions"), report.balance_without_transactions),
    ):
        yield []
        yield [str(title)]
        yield from ([legacy_id] for legacy_id in ids)


def reconciliation_csv(report: Reconciliation) -> Iterator[str]:
    """The report as CSV lines, every cell formula-safe."""
    return csv_lines([str(h) for h in REWARD_HEADERS], reconciliation_rows(report))
