"""A legacy loyalty program's export, made up but shaped like real ones: a few thousand
customers, their balances in several rewards, and their history (transactions and
purchase events), as the four CSV files an operator would stage.

Deterministic for a seed. The history rows of all customers are interleaved in the file
(as an export ordered by anything but the customer is), each customer's own rows in an
order that is neither by date nor by reward; dates come in every form the files accept
(UTC with ``Z``, other offsets, no offset at all, plain dates); amounts have two decimals,
and per customer and reward they add up exactly to the balance. Some customers have no
balance of a reward whose transactions cancel out (earned, then spent and expired).

``broken=N`` breaks the balance rule for N customers on purpose, each a different way
(``BREAKS``): what was broken, by legacy id and reward, is in ``Dataset.broken``.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
import uuid
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

REWARDS = (
    uuid.UUID("3c90c3cc-0d44-4b50-8888-8dd25736052a"),  # points
    uuid.UUID("6f1d3b2a-9c4e-4f7a-b1d2-5e8f9a0b1c2d"),  # cashback
    uuid.UUID("a7e4c1b9-2d3f-4e5a-8b6c-7d9e0f1a2b3c"),  # miles
    uuid.UUID("9b1e2d4f-7a6c-4e11-9d2a-0f3b5c7e8a90"),  # stamps
)
# Dates without an offset are read in the batch's time zone: one without daylight saving.
TIME_ZONE = "America/Bogota"
CENT = Decimal("0.01")

CUSTOMER_COLUMNS = ("id", "name", "email", "registration_date", "status", "country")
BALANCE_COLUMNS = ("customer_id", "reward_id", "amount", "expiration_date", "brand_id")
TRANSACTION_COLUMNS = (
    "customer_id", "reward_id", "type", "amount", "issued_at", "resolved_at", "brand_id",
    "store_id", "channel_id", "funded_by", "details", "cost", "event.type",
    "event.order.purchase_id", "event.order.value", "event.order.payment_method",
)  # fmt: skip
EVENT_COLUMNS = (
    "customer_id", "type", "fulfilled", "issued_at", "resolved_at", "brand_id",
    "order.purchase_id", "order.value", "order.discounted_value", "order.payment_method",
    "order.store_id", "order.products",
)  # fmt: skip

FIRST_NAMES = ("Ana", "Luis", "María", "José", "Lucía", "Andrés", "Sofía", "Mateo", "Zoë")
LAST_NAMES = ("García", "Pérez", "O'Brien", "Núñez", "Smith", "Rodríguez", "Díaz")
PAYMENT_METHODS = ("CREDIT", "DEBIT", "CASH", "BANK_TRANSFER", "OTHER")
DETAILS = (
    "Purchase at store",
    "Canje en tienda, promo “verano”",
    'Redeemed "gift card", 2 units',
    "Expired at year end",
    "Ajuste; cliente nº 5",
)
# 2022-01-01T00:00:00Z and a span of two years, in seconds.
EPOCH = dt.datetime(2022, 1, 1, tzinfo=dt.UTC)
SPAN_S = 2 * 365 * 24 * 3600

# The ways the broken customers break the balance rule, one per customer in this order.
BREAKS = (
    "amount_plus_cent",  # one transaction's amount 0.01 more
    "no_balance_nonzero",  # a reward with transactions but no balance, not adding to 0
    "balance_minus_cent",  # the balance 0.01 less than its transactions
    "row_duplicated",  # one transaction written twice
    "two_rewards",  # two rewards off, in opposite directions
)


@dataclass
class Dataset:
    """Where the files are, and what was put in them."""

    directory: Path
    legacy_ids: list[str] = field(default_factory=list)
    # legacy id -> rewards whose transactions do not add up to the balance, on purpose.
    broken: dict[str, set[str]] = field(default_factory=dict)

    def path(self, kind: str) -> Path:
        return self.directory / f"{kind}.csv"


def money(cents: int) -> str:
    """Two decimals, as the legacy system exports them: ``-27.50``."""
    return f"{Decimal(cents) / 100:.2f}"


class _Writer:
    """The export of one seed."""

    def __init__(self, *, seed: int, time_zone: str) -> None:
        self.random = random.Random(seed)
        self.zone = zoneinfo.ZoneInfo(time_zone)

    # --- values ------------------------------------------------------------------------------
    def moment(self) -> dt.datetime:
        return EPOCH + dt.timedelta(seconds=self.random.randrange(SPAN_S))

    def date_text(self, moment: dt.datetime) -> str:
        """``moment`` in one of the forms a legacy file uses (a plain date drops its time:
        it means midnight UTC of that day)."""
        form = self.random.choices(("z", "plus", "minus", "naive", "date"), (4, 2, 2, 1, 1))[0]
        if form == "z":
            return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        if form == "plus":
            return moment.astimezone(dt.timezone(dt.timedelta(hours=2))).isoformat()
        if form == "minus":
            return moment.astimezone(dt.timezone(dt.timedelta(hours=-5))).isoformat()
        if form == "naive":
            return moment.astimezone(self.zone).replace(tzinfo=None).isoformat()
        return moment.date().isoformat()

    def resolved_text(self, moment: dt.datetime) -> str:
        if self.random.random() < 0.3:
            return ""
        return self.date_text(moment + dt.timedelta(seconds=self.random.randint(1, 600)))

    def cents(self, low: int, high: int) -> int:
        return self.random.randint(low, high)

    # --- rows --------------------------------------------------------------------------------
    def transaction(self, legacy_id: str, reward: uuid.UUID, kind: str, cents: int) -> dict:
        moment = self.moment()
        text_type = kind.lower() if self.random.random() < 0.05 else kind
        row = dict.fromkeys(TRANSACTION_COLUMNS, "")
        row.update(
            customer_id=legacy_id,
            reward_id=str(reward),
            type=text_type,
            amount=money(cents),
            issued_at=self.date_text(moment),
            resolved_at=self.resolved_text(moment),
            brand_id="brand-1",
        )
        if self.random.random() < 0.5:
            row["store_id"] = f"store-{self.random.randint(1, 40):02d}"
            row["channel_id"] = self.random.choice(("store", "web", "app"))
        if self.random.random() < 0.3:
            row["details"] = self.random.choice(DETAILS)
        if kind == "ACCUMULATION" and self.random.random() < 0.4:
            row["funded_by"] = "brand-1"
            row["cost"] = money(max(1, cents // 100))
            row["event.type"] = "PURCHASE"
            row["event.order.purchase_id"] = f"{self.random.randint(0, 999_999):06d}"
            row["event.order.value"] = money(cents * 10)
            row["event.order.payment_method"] = self.random.choice(PAYMENT_METHODS)
        return row

    def reward_history(self, legacy_id: str, reward: uuid.UUID) -> tuple[int, list[dict]]:
        """Transactions of one reward, and the balance they add up to (in cents, > 0)."""
        earned = [self.cents(100, 50_000) for _ in range(self.random.randint(1, 3))]
        kinds = ["ACCUMULATION"] * len(earned)
        if self.random.random() < 0.15:
            earned.append(self.cents(1, 100_000))
            kinds.append("MIGRATION")  # an opening balance
        total = sum(earned)
        spent = []
        for _ in range(self.random.randint(0, 2)):
            left = total - sum(spent) - 1
            if left < 1:
                break
            spent.append(self.random.randint(1, max(1, left // 2)))
        pairs = zip(kinds, earned, strict=True)
        rows = [self.transaction(legacy_id, reward, kind, cents) for kind, cents in pairs]
        for cents in spent:
            kind = self.random.choice(("REDEMPTION", "REDEMPTION", "EXPIRATION", "REVERSAL"))
            rows.append(self.transaction(legacy_id, reward, kind, -cents))
        return total - sum(spent), rows

    def cancelled_history(self, legacy_id: str, reward: uuid.UUID) -> list[dict]:
        """Earned, then redeemed and expired to nothing: no balance row, a sum of 0."""
        earned = self.cents(200, 20_000)
        redeemed = self.random.randint(1, earned - 1)
        return [
            self.transaction(legacy_id, reward, "ACCUMULATION", earned),
            self.transaction(legacy_id, reward, "REDEMPTION", -redeemed),
            self.transaction(legacy_id, reward, "EXPIRATION", redeemed - earned),
        ]

    def event(self, legacy_id: str, number: int) -> dict:
        moment = self.moment()
        value = self.cents(100, 200_000)
        row = dict.fromkeys(EVENT_COLUMNS, "")
        row.update(
            customer_id=legacy_id,
            type="PURCHASE",
            fulfilled=self.random.choices(("true", "", "false", "TRUE"), (6, 2, 1, 1))[0],
            issued_at=self.date_text(moment),
            resolved_at=self.date_text(moment + dt.timedelta(minutes=5)),
            brand_id="brand-1",
            **{
                "order.purchase_id": f"{legacy_id}-{number:03d}",
                "order.value": money(value),
                "order.payment_method": self.random.choice(PAYMENT_METHODS),
            },
        )
        if self.random.random() < 0.4:
            row["order.discounted_value"] = money(value - self.random.randint(0, value // 10))
        if self.random.random() < 0.5:
            row["order.store_id"] = f"store-{self.random.randint(1, 40):02d}"
        if self.random.random() < 0.4:
            products = [
                {
                    "sku": f"SKU-{self.random.randint(1, 500)}",
                    "amount": self.random.randint(1, 4),
                    "value": float(money(self.cents(50, 20_000))),
                }
                for _ in range(self.random.randint(1, 3))
            ]
            row["order.products"] = json.dumps(products, ensure_ascii=False)
        return row

    def interleaved(self, per_customer: dict[str, list[dict]]) -> list[dict]:
        """All customers' rows in one file, each customer's in its own (shuffled) order,
        picking the customer of the next row at random, weighted by rows left."""
        queues = []
        for rows in per_customer.values():
            rows = list(rows)
            self.random.shuffle(rows)
            queues.append(rows[::-1])
        tickets = [i for i, rows in enumerate(queues) for _ in rows]
        self.random.shuffle(tickets)
        return [queues[i].pop() for i in tickets]


def _write(path: Path, columns: tuple[str, ...], rows: list[dict]) -> None:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def _break(
    writer: _Writer,
    how: str,
    legacy_id: str,
    balances: dict[str, int],
    history: list[dict],
    balance_rows: list[dict],
) -> set[str]:
    """Break the balance rule of one customer ``how``; the rewards it broke."""
    rewarded = [row for row in history if row["reward_id"] in balances]
    if how == "amount_plus_cent":
        row = rewarded[0]
        row["amount"] = str(Decimal(row["amount"]) + CENT)
        return {row["reward_id"]}
    if how == "no_balance_nonzero":
        reward = next(str(r) for r in REWARDS if str(r) not in balances)
        history.append(writer.transaction(legacy_id, uuid.UUID(reward), "ACCUMULATION", 500))
        history.append(writer.transaction(legacy_id, uuid.UUID(reward), "REDEMPTION", -499))
        return {reward}
    if how == "balance_minus_cent":
        reward = rewarded[-1]["reward_id"]
        for row in balance_rows:
            if row["customer_id"] == legacy_id and row["reward_id"] == reward:
                row["amount"] = str(Decimal(row["amount"]) - CENT)
        return {reward}
    if how == "row_duplicated":
        history.append(dict(rewarded[0]))
        return {rewarded[0]["reward_id"]}
    if how == "two_rewards":
        first = rewarded[0]
        second = next(row for row in rewarded if row["reward_id"] != first["reward_id"])
        first["amount"] = str(Decimal(first["amount"]) + Decimal("1.10"))
        second["amount"] = str(Decimal(second["amount"]) - CENT)
        return {first["reward_id"], second["reward_id"]}
    raise ValueError(how)


def history_dataset(
    directory: Path, *, customers: int = 2000, seed: int = 20231107, broken: int = 0
) -> Dataset:
    """Write ``customers.csv``, ``balances.csv``, ``transactions.csv`` and ``events.csv``
    into ``directory``; ``broken`` customers (at most ``len(BREAKS)``) break the balance
    rule on purpose."""
    writer = _Writer(seed=seed, time_zone=TIME_ZONE)
    rand = writer.random
    dataset = Dataset(directory=directory)
    customer_rows, balance_rows = [], []
    transactions: dict[str, list[dict]] = defaultdict(list)
    events: dict[str, list[dict]] = defaultdict(list)
    balances: dict[str, dict[str, int]] = {}
    for number in range(customers):
        # Mostly prefixed ids; some all digits, whose leading zeros are part of the id.
        legacy_id = f"{number:07d}" if number % 7 == 3 else f"LGY-{number:06d}"
        dataset.legacy_ids.append(legacy_id)
        first, last = rand.choice(FIRST_NAMES), rand.choice(LAST_NAMES)
        customer_rows.append(
            {
                "id": legacy_id,
                "name": f"{first} {last}",
                "email": f"customer.{number}@example.com",
                "registration_date": writer.date_text(writer.moment()),
                "status": rand.choice(("ACTIVE", "ACTIVE", "INACTIVE")),
                "country": rand.choice(("CO", "MX", "")),
            }
        )
        held = rand.sample(REWARDS, rand.choices((0, 1, 2, 3), (1, 4, 3, 2))[0])
        balances[legacy_id] = {}
        for reward in held:
            total, rows = writer.reward_history(legacy_id, reward)
            balances[legacy_id][str(reward)] = total
            transactions[legacy_id] += rows
            amount = money(total)
            if rand.random() < 0.2:  # some exports drop trailing zeros
                amount = str(Decimal(amount).normalize())
            balance_rows.append(
                {
                    "customer_id": legacy_id,
                    "reward_id": str(reward),
                    "amount": amount,
                    "expiration_date": rand.choice(("", "2026-12-31T23:59:59Z")),
                    "brand_id": "brand-1",
                }
            )
        spare = [reward for reward in REWARDS if reward not in held]
        if spare and rand.random() < 0.05:
            transactions[legacy_id] += writer.cancelled_history(legacy_id, rand.choice(spare))
        for event_number in range(rand.choices((0, 1, 2, 3), (3, 4, 2, 1))[0]):
            events[legacy_id].append(writer.event(legacy_id, event_number))

    # The broken ones: customers with at least two rewards and a reward left over.
    candidates = [
        legacy_id for legacy_id, held in balances.items() if 2 <= len(held) < len(REWARDS)
    ]
    for how, legacy_id in zip(BREAKS[:broken], rand.sample(candidates, broken), strict=True):
        dataset.broken[legacy_id] = _break(
            writer, how, legacy_id, balances[legacy_id], transactions[legacy_id], balance_rows
        )

    _write(dataset.path("customers"), CUSTOMER_COLUMNS, customer_rows)
    _write(dataset.path("balances"), BALANCE_COLUMNS, balance_rows)
    _write(dataset.path("transactions"), TRANSACTION_COLUMNS, writer.interleaved(transactions))
    _write(dataset.path("events"), EVENT_COLUMNS, writer.interleaved(events))
    return dataset
