"""A realistic export, from its files to what Masivo's endpoints received.

Two thousand customers with balances in several rewards, ten thousand transactions and
two thousand purchases (``history_dataset``), staged the way an operator stages them
(``stage_file``), validated, approved by a second person, submitted, and sent by a job
to the sandbox. What the sandbox holds is then compared, customer by customer and field
by field, with what the files say, read here on their own (not through the console's
parsers): amounts as exact numbers, dates in UTC with ``Z``, each customer's rows in file
order, its transactions in one entry. And the same export with a few customers broken on
purpose: validation stops exactly those, naming the reward.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import zoneinfo
from collections import defaultdict
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from customers.models import CustomerProblem, StagedCustomer, StagingBatch
from customers.services import batch_approve, batch_validate
from migrations_jobs.models import MigrationJob
from migrations_jobs.sandbox.models import SandboxCustomer, SandboxHistoryEntry, SandboxRequest
from migrations_jobs.services import job_start
from tests.customers.test_history_validation import transaction
from tests.factories import BalanceFactory, BatchFactory, CustomerFactory
from tests.integration.history_dataset import BREAKS, TIME_ZONE, history_dataset
from tests.migrations_jobs.test_jobs import run_to_end

Kind = SandboxRequest.Kind
BATCH = "legacy-export"
KINDS = ("customers", "balances", "transactions", "events")
# The columns read as numbers, dates and JSON text; the others are text.
NUMBERS = {"amount", "cost", "event.order.value", "order.value", "order.discounted_value"}
DATES = {"issued_at", "resolved_at"}
JSON_TEXT = {"order.products"}
REWARD = "3c90c3cc-0d44-4b50-8888-8dd25736052a"


# --- the files, read on their own ------------------------------------------------------------
def rows_of(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def utc_text(text: str) -> str:
    """A file's date as the contract writes it: UTC, ``Z``. A plain date is midnight UTC;
    a date-time without an offset is in the batch's time zone."""
    if len(text) == len("2023-11-07"):
        return f"{text}T00:00:00Z"
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zoneinfo.ZoneInfo(TIME_ZONE))
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def entry_of(row: dict[str, str]) -> dict:
    """One history row as its request entry should carry it: empty cells left out, dotted
    columns nested, numbers exact, dates in UTC."""
    entry: dict = {}
    for column, text in row.items():
        if column == "customer_id" or text == "":
            continue
        if column in NUMBERS:
            value = Decimal(text)
        elif column in DATES:
            value = utc_text(text)
        elif column in JSON_TEXT:
            value = exact(json.loads(text))
        else:
            value = text
        *parents, key = column.split(".")
        node = entry
        for parent in parents:
            node = node.setdefault(parent, {})
        node[key] = value
    return entry


def expected_transactions(path: Path) -> dict[str, list[dict]]:
    expected: dict[str, list[dict]] = defaultdict(list)
    for row in rows_of(path):
        entry = entry_of(row)
        entry["type"] = entry["type"].upper()  # the contract's spelling, whatever the case
        expected[row["customer_id"]].append(entry)
    return expected


def expected_events(path: Path) -> dict[str, list[dict]]:
    expected: dict[str, list[dict]] = defaultdict(list)
    for row in rows_of(path):
        entry = entry_of(row)
        entry["fulfilled"] = row["fulfilled"].lower() != "false"  # blank: fulfilled
        expected[row["customer_id"]].append(entry)
    return expected


def exact(value):
    """JSON numbers as exact decimals (``12.5`` and ``12.50`` are equal, ``"12.5"`` is not
    a number and stays text), to compare amounts by value."""
    if isinstance(value, bool) or value is None or isinstance(value, str | Decimal):
        return value
    if isinstance(value, int | float):
        return Decimal(repr(value))
    if isinstance(value, list):
        return [exact(item) for item in value]
    return {key: exact(item) for key, item in value.items()}


def mismatches(directory: Path) -> dict[tuple[str, str], tuple[Decimal, Decimal]]:
    """(legacy id, reward) -> (balance, sum of transactions), where they differ."""
    balances: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for row in rows_of(directory / "balances.csv"):
        balances[row["customer_id"], row["reward_id"]] += Decimal(row["amount"])
    totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for row in rows_of(directory / "transactions.csv"):
        totals[row["customer_id"], row["reward_id"]] += Decimal(row["amount"])
    return {
        key: (balances.get(key, Decimal(0)), total)
        for key, total in totals.items()
        if total != balances.get(key, Decimal(0))
    }


def plain(number: Decimal) -> str:
    return format(number.normalize(), "f")


# --- what the sandbox received ---------------------------------------------------------------
def received(kind: str) -> dict[str, list[list]]:
    """legacy id -> the items of each of its entries, in the order they arrived."""
    found: dict[str, list[list]] = defaultdict(list)
    entries = SandboxHistoryEntry.objects.filter(kind=kind).order_by("request_id", "pk")
    for legacy_id, items in entries.values_list("legacy_id", "items"):
        found[legacy_id].append(items)
    return found


# --- the operator's steps --------------------------------------------------------------------
def stage_all(dataset, stager) -> StagingBatch:
    for kind in KINDS:
        call_command(
            "stage_file",
            BATCH,
            kind,
            str(dataset.path(kind)),
            user=stager.username,
            time_zone=TIME_ZONE,
            stdout=StringIO(),
            stderr=StringIO(),
        )
    return StagingBatch.objects.get(name=BATCH)


@pytest.fixture
def export(tmp_path):
    return history_dataset(tmp_path, customers=2000)


def test_a_realistic_export_reaches_the_endpoints_exactly_as_its_files_say(
    export, importer, approver, sandboxed, quick
):
    customers = rows_of(export.path("customers"))
    transactions = expected_transactions(export.path("transactions"))
    events = expected_events(export.path("events"))
    transaction_rows = sum(map(len, transactions.values()))
    event_rows = sum(map(len, events.values()))
    assert len(customers) == 2000
    assert transaction_rows > 5 * len(customers)
    assert event_rows > len(customers) / 2
    assert not mismatches(export.directory)  # the generator's own promise

    batch = stage_all(export, importer)
    assert (batch.time_zone, batch.transaction_count, batch.event_count) == (
        TIME_ZONE,
        transaction_rows,
        event_rows,
    )
    summary = batch_validate(batch=batch, user=importer)
    assert (summary.problem_count, summary.valid, summary.invalid) == (0, 2000, 0)
    assert summary.is_validated
    batch = batch_approve(batch=batch, user=approver)
    job = run_to_end(job_start(batch=batch, user=approver))

    assert job.status == MigrationJob.Status.SUCCEEDED
    assert (job.total_customers, job.total_transactions, job.total_events) == (
        2000,
        transaction_rows,
        event_rows,
    )
    assert (job.sent_customers, job.sent_transactions, job.sent_events) == (
        2000,
        transaction_rows,
        event_rows,
    )
    # Customers: each once, with its email.
    held = {c.legacy_id: c for c in SandboxCustomer.objects.all()}
    assert set(held) == {row["id"] for row in customers}
    for row in customers:
        assert (held[row["id"]].email, held[row["id"]].times_received) == (row["email"], 1)
    # History: never ahead of its customer; transactions in one entry per customer.
    assert not SandboxHistoryEntry.objects.filter(has_customer=False).exists()
    arrived = received(Kind.TRANSACTIONS)
    assert set(arrived) == set(transactions)
    for legacy_id, expected in transactions.items():
        assert len(arrived[legacy_id]) == 1, legacy_id
        [items] = arrived[legacy_id]
        assert [exact(item) for item in items] == expected, legacy_id
    arrived = received(Kind.EVENTS)
    assert set(arrived) == set(events)
    for legacy_id, expected in events.items():
        items = [item for entry in arrived[legacy_id] for item in entry]
        assert [exact(item) for item in items] == expected, legacy_id


def test_customers_broken_on_purpose_are_the_ones_validation_stops(tmp_path, importer):
    export = history_dataset(tmp_path, customers=2000, broken=len(BREAKS))
    wrong = mismatches(export.directory)
    assert {legacy_id for legacy_id, _reward in wrong} == set(export.broken)

    batch = stage_all(export, importer)
    summary = batch_validate(batch=batch, user=importer)

    assert not summary.is_validated
    assert (summary.valid, summary.invalid) == (2000 - len(BREAKS), len(BREAKS))
    problems = CustomerProblem.objects.filter(batch=batch)
    assert set(problems.values_list("code", flat=True)) == {CustomerProblem.Code.UNRECONCILED}
    found = {(p.legacy_id, p.message_params["reward"]): p for p in problems}
    assert set(found) == set(wrong)
    for (legacy_id, reward), (balance, total) in wrong.items():
        problem = found[legacy_id, reward]
        assert problem.field == "transactions"
        assert problem.customer.legacy_id == legacy_id
        assert problem.message.startswith(f"The transactions of reward {reward} add up to")
        assert (
            f"add up to {plain(total)}, but the balance is {plain(balance)}: a difference of "
            f"{plain(total - balance)}."
        ) in problem.message
    invalid = StagedCustomer.objects.filter(batch=batch, is_valid=False)
    assert set(invalid.values_list("legacy_id", flat=True)) == set(export.broken)


@pytest.mark.django_db
def test_amounts_that_cancel_out_add_up_to_exactly_their_balance(importer):
    batch = BatchFactory(created_by=importer)
    ann = CustomerFactory(batch=batch, legacy_id="000001")  # no balance of the reward: 0
    transaction(ann, amount="0.10", reward=REWARD)
    transaction(ann, amount="0.20", reward=REWARD)
    transaction(ann, amount="-0.30", reward=REWARD, type="REDEMPTION")
    bob = CustomerFactory(batch=batch, legacy_id="000002")
    BalanceFactory(customer=bob, reward_id=REWARD, amount=Decimal("0.01"))
    transaction(bob, amount="1000.02", reward=REWARD)
    transaction(bob, amount="-1000.01", reward=REWARD, type="REDEMPTION")

    summary = batch_validate(batch=batch, user=importer)

    assert list(CustomerProblem.objects.filter(batch=batch).values_list("message")) == []
    assert summary.is_validated
