"""What validation finds wrong with a batch's customers, stored as ``CustomerProblem`` rows.

Each customer is checked by building the exact payload it would send (customers.payload)
and running the contract on it (customers.contract); then come what one customer alone
cannot show: emails repeated inside the batch (in any case), rows whose customer is staged
in another batch, and customers an earlier batch already sent.

A customer already sent by another batch is excluded automatically (unless the operator
ticked "send again"), with a reason naming that batch; the ``already_sent`` problem stays
as the record of why. ``customers_auto_excluded`` tells those exclusions from an
operator's own, whose reason is kept.

Every problem is built by ``CustomerProblem.with_message`` from a ``Message`` (a message
constant and its parameters), so that each reader reads it in their own language.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import NamedTuple

from django.conf import settings
from django.db.models import Count, F, QuerySet
from django.db.models.functions import Lower
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from console.messages import Message
from customers.contract import Checker
from customers.models import (
    CustomerProblem,
    Outcome,
    StagedBalance,
    StagedCustomer,
    StagedDevice,
    StagedMetric,
    StagingBatch,
)
from customers.payload import customer_payloads_by_pk, payloads_meanwhile

Code = CustomerProblem.Code

# Customers read, checked and written per round.
CHUNK_SIZE = 1000
# How many other legacy ids a duplicate-email message names before "and N more".
NAMED_IN_MESSAGE = 5

ERR_DUPLICATE_EMAIL = _(
    "Email “%(email)s” is also used by %(others)s in this batch; Masivo keeps emails "
    "unique per account, whatever their case. Fix the emails or exclude all but one."
)
ERR_DUPLICATE_EMAIL_MORE = _("%(named)s and %(more)d more")
ERR_ALREADY_SENT = _(
    "Already sent to Masivo by batch “%(batch)s”, so it is excluded here. Tick “send again” "
    "to send it anyway."
)
EXCLUSION_ALREADY_SENT = _("Already sent by batch “%(batch)s”.")
ERR_CHILD_ELSEWHERE = _(
    "This %(kind)s is staged in this batch, but its customer “%(legacy_id)s” belongs to "
    "batch “%(other)s”: it is not part of what this batch sends. Delete it, or stage it "
    "with a customer of this batch."
)

REASON_MAX = StagedCustomer._meta.get_field("exclusion_reason").max_length
# The rows that belong to a customer: model, the word for one, its field in the body, and
# what tells its rows apart in a problem's field.
CHILD_KINDS = (
    (StagedBalance, _("balance"), "balance", "pk"),
    (StagedDevice, _("device"), "devices", "pk"),
    (StagedMetric, _("metric"), "metrics", "period"),
)


def chunked(values: Sequence, size: int | None = None) -> Iterator[Sequence]:
    """``values`` in slices of ``size`` (``CHUNK_SIZE`` by default)."""
    size = size or CHUNK_SIZE
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _customer_rows(batch: StagingBatch) -> Iterator[list[tuple]]:
    """``(pk, legacy_id, is_excluded, resend)`` of every customer, a chunk per query."""
    queryset = (
        StagedCustomer.objects.filter(batch=batch)
        .order_by("pk")
        .values_list("pk", "legacy_id", "is_excluded", "resend")
    )
    last = 0
    while rows := list(queryset.filter(pk__gt=last)[:CHUNK_SIZE]):
        yield rows
        last = rows[-1][0]


def _exclusion_reason(other_batch: str, *, language: str | None = None) -> str:
    if language is None:
        return str(EXCLUSION_ALREADY_SENT % {"batch": other_batch})[:REASON_MAX]
    with translation.override(language):
        return _exclusion_reason(other_batch)


def customers_auto_excluded(
    batch: StagingBatch, *, customer_ids: Sequence[int] | None = None
) -> set[int]:
    """Customers excluded by validation because another batch had sent them: they carry the
    ``already_sent`` problem and still the reason validation wrote (in any language)."""
    problems = CustomerProblem.objects.filter(
        batch=batch, code=Code.ALREADY_SENT, customer__is_excluded=True
    )
    if customer_ids is not None:
        problems = problems.filter(customer_id__in=customer_ids)
    found = set()
    reasons: dict[str, set[str]] = {}
    rows = problems.values_list("customer_id", "customer__exclusion_reason", "other_batch__name")
    for customer_id, reason, other_batch in rows:
        if other_batch is None:
            continue
        if other_batch not in reasons:
            reasons[other_batch] = {
                _exclusion_reason(other_batch, language=code) for code, _label in settings.LANGUAGES
            }
        if reason in reasons[other_batch]:
            found.add(customer_id)
    return found


def _chunk_customers(batch: StagingBatch, rows: list[tuple]) -> QuerySet[StagedCustomer]:
    """The batch's customers of a chunk: all of them with a pk in the chunk's range (the
    chunk was read in pk order, and the batch lock keeps imports out meanwhile). A range,
    not a list of a thousand pks, which costs more to send than the rows it selects."""
    return StagedCustomer.objects.filter(batch=batch, pk__gte=rows[0][0], pk__lte=rows[-1][0])


def _sent_elsewhere(batch: StagingBatch, rows: list[tuple]) -> dict[str, tuple[int, str]]:
    """legacy id -> (batch id, batch name) of the latest other batch that sent it."""
    return sent_elsewhere(batch, _chunk_customers(batch, rows).values("legacy_id"))


def sent_elsewhere(
    batch: StagingBatch, legacy_ids: Iterable[str] | QuerySet
) -> dict[str, tuple[int, str]]:
    """Of ``legacy_ids`` (a list, or a query of them), those a batch other than ``batch``
    sent to Masivo: legacy id -> (batch id, batch name) of the latest such batch. One
    query; validation asks it per chunk of customers, the import's preview per block of
    rows."""
    sent = (
        StagedCustomer.objects.filter(legacy_id__in=legacy_ids, outcome=Outcome.SENT)
        .exclude(batch=batch)
        .order_by(F("outcome_at").asc(nulls_first=True), "pk")
        .values_list("legacy_id", "batch_id", "batch__name")
    )
    return {legacy_id: (batch_id, name) for legacy_id, batch_id, name in sent}


def _store_validity(batch: StagingBatch, rows: list[tuple], invalid: list[int]) -> None:
    """Set ``is_valid`` for a chunk in two UPDATEs: the whole range gets the common answer
    and the fewer customers listed get the other one; rows that already say so are left."""
    invalid_set = set(invalid)
    valid = [row[0] for row in rows if row[0] not in invalid_set]
    common, listed, listed_value = (True, invalid, False)
    if len(invalid) > len(valid):
        common, listed, listed_value = (False, valid, True)
    most = _chunk_customers(batch, rows).exclude(is_valid=common)
    if listed:
        most = most.exclude(pk__in=listed)
        StagedCustomer.objects.filter(pk__in=listed).exclude(is_valid=listed_value).update(
            is_valid=listed_value
        )
    most.update(is_valid=common)


def _store_exclusions(exclude: dict[tuple[int, str], list[int]], include: list[int]) -> None:
    """Exclude the customers another batch sent (naming it); include back the ones an
    earlier validation had excluded so, for which that no longer holds."""
    for (_other_id, other_name), pks in exclude.items():
        reason = _exclusion_reason(other_name)
        StagedCustomer.objects.filter(pk__in=pks).update(is_excluded=True, exclusion_reason=reason)
    if include:
        StagedCustomer.objects.filter(pk__in=include).update(is_excluded=False, exclusion_reason="")


# What ``_judge_chunk`` finds for a customer whose entry is known to pass.
_PASSED = object()


@dataclass
class _ChunkVerdict:
    """What validation found in a chunk of customers, to store."""

    problems: list[CustomerProblem] = dataclasses.field(default_factory=list)
    invalid: list[int] = dataclasses.field(default_factory=list)
    exclude: dict[tuple[int, str], list[int]] = dataclasses.field(
        default_factory=lambda: defaultdict(list)
    )
    include: list[int] = dataclasses.field(default_factory=list)


def _judge_chunk(
    *,
    batch: StagingBatch,
    rows: list[tuple],
    payloads: dict[int, dict],
    sent: dict[str, tuple[int, str]],
    checker: Checker,
    auto_excluded: set[int],
) -> _ChunkVerdict:
    """Check a chunk of customers against the contract (those in ``payloads``: the others'
    entries are known to pass) and earlier batches (``sent``), in Python alone: no query,
    so the database can write the next chunk's payloads meanwhile
    (``payloads_meanwhile``)."""
    verdict = _ChunkVerdict()
    for pk, legacy_id, is_excluded, resend in rows:
        row = {"batch": batch, "customer_id": pk, "legacy_id": legacy_id}
        payload = payloads.get(pk, _PASSED)
        found = [] if payload is _PASSED else checker.check(payload)
        verdict.problems += [
            CustomerProblem.with_message(p.untranslated, **row, field=p.field, code=p.code)
            for p in found
        ]
        if found:
            verdict.invalid.append(pk)
        other = sent.get(legacy_id)
        if other is not None and not resend:
            verdict.problems.append(
                CustomerProblem.with_message(
                    Message.of(ERR_ALREADY_SENT, batch=other[1]),
                    **row,
                    field="id",
                    code=Code.ALREADY_SENT,
                    other_batch_id=other[0],
                )
            )
            if not is_excluded:
                verdict.exclude[other].append(pk)
        elif is_excluded and pk in auto_excluded:
            # Excluded by an earlier validation because another batch had sent it; that no
            # longer holds (send again is ticked, or the other batch is gone).
            verdict.include.append(pk)
    return verdict


def _store_verdict(*, batch: StagingBatch, rows: list[tuple], verdict: _ChunkVerdict) -> int:
    """Write what ``_judge_chunk`` found; returns how many problems."""
    _store_exclusions(verdict.exclude, verdict.include)
    _store_validity(batch, rows, verdict.invalid)
    CustomerProblem.objects.bulk_create(verdict.problems, batch_size=CHUNK_SIZE)
    return len(verdict.problems)


def _check_customers(
    *,
    batch: StagingBatch,
    checker: Checker,
    auto_excluded: set[int],
    progress=None,
    only: set[int] | None = None,
) -> tuple[int, int]:
    """Check every customer of ``batch``, a chunk at a time, and store what is found;
    returns how many problems, and how many customers the contract refused. ``only``: the
    customers whose entries are checked, when the others' are known to pass
    (``services.entries``). Each chunk is judged while the database writes the next
    chunk's payloads."""
    count = checked = refused = 0

    def entry_ids(rows: list[tuple]) -> list[int]:
        return [row[0] for row in rows if only is None or row[0] in only]

    chunks = _customer_rows(batch)
    rows = next(chunks, [])
    payloads = customer_payloads_by_pk(entry_ids(rows))
    while rows:
        sent = _sent_elsewhere(batch, rows)
        upcoming = next(chunks, [])
        with payloads_meanwhile(entry_ids(upcoming)) as upcoming_payloads:
            verdict = _judge_chunk(
                batch=batch,
                rows=rows,
                payloads=payloads,
                sent=sent,
                checker=checker,
                auto_excluded=auto_excluded,
            )
        count += _store_verdict(batch=batch, rows=rows, verdict=verdict)
        refused += len(verdict.invalid)
        checked += len(rows)
        if progress is not None:
            progress(checked)
        rows, payloads = upcoming, upcoming_payloads()
    return count, refused


def duplicate_email_message(
    email: str, group: Sequence[tuple[str, object]], own: object
) -> Message:
    """What the member ``own`` of a ``group`` sharing ``email`` is told: the others' legacy
    ids, the first few by name (``group``: ``(legacy id, key)`` of every member, ``key``
    telling members apart). Validation and the import's preview both say it this way; it
    reads a few members, not all of them, so a big group costs no more per member."""
    others = [legacy_id for legacy_id, key in group[: NAMED_IN_MESSAGE + 1] if key != own]
    named: str | Message = ", ".join(f"“{legacy_id}”" for legacy_id in others[:NAMED_IN_MESSAGE])
    if len(group) - 1 > NAMED_IN_MESSAGE:
        more = len(group) - 1 - NAMED_IN_MESSAGE
        named = Message.of(ERR_DUPLICATE_EMAIL_MORE, named=named, more=more)
    return Message.of(ERR_DUPLICATE_EMAIL, email=email, others=named)


def _flag_duplicate_emails(batch: StagingBatch) -> int:
    """Flag every customer of a group sharing an email (any case), naming the others.

    Excluded customers are left out: excluding all but one settles a duplicate.
    """
    candidates = (
        StagedCustomer.objects.filter(batch=batch, is_excluded=False)
        .exclude(email="")
        .annotate(email_key=Lower("email"))
    )
    repeated = (
        candidates.values("email_key")
        .annotate(uses=Count("pk"))
        .filter(uses__gt=1)
        .values("email_key")
    )
    members = (
        candidates.filter(email_key__in=repeated)
        .order_by("email_key", "pk")
        .values_list("email_key", "pk", "legacy_id", "email")
    )
    problems: list[CustomerProblem] = []
    for _key, rows in groupby(members, key=lambda row: row[0]):
        group = list(rows)
        named = [(legacy_id, pk) for _email_key, pk, legacy_id, _email in group]
        problems += [
            CustomerProblem.with_message(
                duplicate_email_message(email, named, pk),
                batch=batch,
                customer_id=pk,
                legacy_id=legacy_id,
                field="email",
                code=Code.DUPLICATE_EMAIL,
            )
            for _email_key, pk, legacy_id, email in group
        ]
    for pks in chunked([problem.customer_id for problem in problems]):
        StagedCustomer.objects.filter(pk__in=pks).update(is_valid=False)
    CustomerProblem.objects.bulk_create(problems, batch_size=CHUNK_SIZE)
    return len(problems)


def _flag_children_elsewhere(batch: StagingBatch) -> int:
    """Balances, devices and metrics staged in ``batch`` whose customer is not in it."""
    problems: list[CustomerProblem] = []
    for model, word, field, detail in CHILD_KINDS:
        kind = Message.of(word)
        rows = (
            model.objects.filter(batch=batch)
            .exclude(customer__batch=batch)
            .order_by("pk")
            .values_list("customer__legacy_id", "customer__batch__name", detail)
        )
        for legacy_id, other, extra in rows:
            message = Message.of(ERR_CHILD_ELSEWHERE, kind=kind, legacy_id=legacy_id, other=other)
            problems.append(
                CustomerProblem.with_message(
                    message,
                    batch=batch,
                    customer=None,
                    legacy_id=legacy_id,
                    field=f"{field}.{extra}" if model is StagedMetric else field,
                    code=Code.MISSING_CUSTOMER,
                )
            )
    CustomerProblem.objects.bulk_create(problems, batch_size=CHUNK_SIZE)
    return len(problems)


class ProblemsFound(NamedTuple):
    """Problems in all, those of rows of other batches' customers, customers refused."""

    count: int
    elsewhere: int
    refused: int


def batch_problems_record(
    *, batch: StagingBatch, checker: Checker, progress=None, only: set[int] | None = None
) -> ProblemsFound:
    """Replace the problems of ``batch`` (locked by the caller) with what is found now, and
    set each customer's ``is_valid``. ``progress`` is called with the customers checked so
    far; ``only``: see ``_check_customers``."""
    auto_excluded = customers_auto_excluded(batch)
    CustomerProblem.objects.filter(batch=batch).delete()
    elsewhere = _flag_children_elsewhere(batch)
    count, refused = _check_customers(
        batch=batch, checker=checker, auto_excluded=auto_excluded, progress=progress, only=only
    )
    count += elsewhere + _flag_duplicate_emails(batch)
    return ProblemsFound(count=count, elsewhere=elsewhere, refused=refused)
