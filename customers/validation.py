"""Validating a batch against the contract, and the operator's exclude / send-again choices.

``batch_validate`` checks every staged customer by building the exact payload it would
send (customers.payload) and running the contract on it (customers.contract), then adds
what one customer alone cannot show: emails repeated inside the batch (in any case), rows
whose customer is staged in another batch, and customers an earlier batch already sent.
Problems are stored as ``CustomerProblem`` rows, replacing the previous validation's.

A customer already sent by another batch is excluded automatically (unless the operator
ticked "send again"), with a reason naming that batch; the ``already_sent`` problem stays
as the record of why. Ticking "send again" later includes it back, as long as its exclusion
is still the automatic one (an operator's own exclusion, with their reason, is kept).
"""

import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import groupby

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q
from django.db.models.functions import Lower
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from console.errors import InvalidInput
from customers.contract import customer_checker
from customers.models import (
    CustomerProblem,
    Outcome,
    StagedBalance,
    StagedCustomer,
    StagedDevice,
    StagedMetric,
    StagingBatch,
)
from customers.payload import customer_payloads_by_pk
from customers.services import BatchStateError, batch_mark_edited, batch_transition

logger = logging.getLogger(__name__)

Status = StagingBatch.Status
Code = CustomerProblem.Code

CHUNK_SIZE = 1000
# How many other legacy ids a duplicate-email message names before "and N more".
NAMED_IN_MESSAGE = 5

ERR_VALIDATE_STATE = _(
    "Batch “%(batch)s” is %(status)s: only a draft or validated batch can be validated. "
    "Reopen it first."
)
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
ERR_REASON_TOO_LONG = _("Keep the exclusion reason to %(max)d characters at most.")

_REASON_MAX = StagedCustomer._meta.get_field("exclusion_reason").max_length


@dataclass(frozen=True)
class ValidationSummary:
    valid: int
    invalid: int
    excluded: int
    problem_count: int
    status: str

    @property
    def is_validated(self) -> bool:
        return self.status == Status.VALIDATED


def _chunked(values: Sequence, size: int = CHUNK_SIZE) -> Iterator[Sequence]:
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
        return str(EXCLUSION_ALREADY_SENT % {"batch": other_batch})[:_REASON_MAX]
    with translation.override(language):
        return _exclusion_reason(other_batch)


def _auto_excluded(batch: StagingBatch, *, customer_ids: Sequence[int] | None = None) -> set[int]:
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


def _chunk_customers(batch: StagingBatch, rows: list[tuple]):
    """The batch's customers of a chunk: all of them with a pk in the chunk's range (the
    chunk was read in pk order, and the batch lock keeps imports out meanwhile). A range,
    not a list of a thousand pks, which costs more to send than the rows it selects."""
    return StagedCustomer.objects.filter(batch=batch, pk__gte=rows[0][0], pk__lte=rows[-1][0])


def _sent_elsewhere(batch: StagingBatch, rows: list[tuple]) -> dict[str, tuple[int, str]]:
    """legacy id -> (batch id, batch name) of the latest other batch that sent it."""
    sent = (
        StagedCustomer.objects.filter(
            legacy_id__in=_chunk_customers(batch, rows).values("legacy_id"),
            outcome=Outcome.SENT,
        )
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


def _validate_chunk(
    *, batch: StagingBatch, rows: list[tuple], checker, auto_excluded: set[int]
) -> int:
    payloads = customer_payloads_by_pk([row[0] for row in rows])
    sent = _sent_elsewhere(batch, rows)
    problems: list[CustomerProblem] = []
    invalid: list[int] = []
    exclude: dict[tuple[int, str], list[int]] = defaultdict(list)
    include: list[int] = []
    for pk, legacy_id, is_excluded, resend in rows:
        found = checker.check(payloads[pk])
        for problem in found:
            problems.append(
                CustomerProblem(
                    batch=batch,
                    customer_id=pk,
                    legacy_id=legacy_id,
                    field=problem.field,
                    code=problem.code,
                    message=problem.message,
                )
            )
        if found:
            invalid.append(pk)
        other = sent.get(legacy_id)
        if other is not None and not resend:
            problems.append(
                CustomerProblem(
                    batch=batch,
                    customer_id=pk,
                    legacy_id=legacy_id,
                    field="id",
                    code=Code.ALREADY_SENT,
                    message=str(ERR_ALREADY_SENT % {"batch": other[1]}),
                    other_batch_id=other[0],
                )
            )
            if not is_excluded:
                exclude[other].append(pk)
        elif is_excluded and pk in auto_excluded:
            # Excluded by an earlier validation because another batch had sent it; that no
            # longer holds (send again is ticked, or the other batch is gone).
            include.append(pk)

    for (_other_id, other_name), pks in exclude.items():
        reason = _exclusion_reason(other_name)
        StagedCustomer.objects.filter(pk__in=pks).update(is_excluded=True, exclusion_reason=reason)
    if include:
        StagedCustomer.objects.filter(pk__in=include).update(is_excluded=False, exclusion_reason="")
    _store_validity(batch, rows, invalid)
    CustomerProblem.objects.bulk_create(problems, batch_size=CHUNK_SIZE)
    return len(problems)


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
    flagged: list[int] = []
    for _key, group in groupby(members, key=lambda row: row[0]):
        group = list(group)
        for _email_key, pk, legacy_id, email in group:
            others = [f"“{row[2]}”" for row in group if row[1] != pk]
            named = ", ".join(others[:NAMED_IN_MESSAGE])
            if len(others) > NAMED_IN_MESSAGE:
                named = str(
                    ERR_DUPLICATE_EMAIL_MORE
                    % {"named": named, "more": len(others) - NAMED_IN_MESSAGE}
                )
            problems.append(
                CustomerProblem(
                    batch=batch,
                    customer_id=pk,
                    legacy_id=legacy_id,
                    field="email",
                    code=Code.DUPLICATE_EMAIL,
                    message=str(ERR_DUPLICATE_EMAIL % {"email": email, "others": named}),
                )
            )
            flagged.append(pk)
    for pks in _chunked(flagged):
        StagedCustomer.objects.filter(pk__in=pks).update(is_valid=False)
    CustomerProblem.objects.bulk_create(problems, batch_size=CHUNK_SIZE)
    return len(problems)


def _flag_children_elsewhere(batch: StagingBatch) -> int:
    """Balances, devices and metrics staged in ``batch`` whose customer is not in it."""
    problems: list[CustomerProblem] = []
    kinds = (
        (StagedBalance, _("balance"), "balance", "pk"),
        (StagedDevice, _("device"), "devices", "pk"),
        (StagedMetric, _("metric"), "metrics", "period"),
    )
    for model, kind, field, detail in kinds:
        rows = (
            model.objects.filter(batch=batch)
            .exclude(customer__batch=batch)
            .order_by("pk")
            .values_list("customer__legacy_id", "customer__batch__name", detail)
        )
        for legacy_id, other, extra in rows:
            problems.append(
                CustomerProblem(
                    batch=batch,
                    customer=None,
                    legacy_id=legacy_id,
                    field=f"{field}.{extra}" if model is StagedMetric else field,
                    code=Code.MISSING_CUSTOMER,
                    message=str(
                        ERR_CHILD_ELSEWHERE % {"kind": kind, "legacy_id": legacy_id, "other": other}
                    ),
                )
            )
    CustomerProblem.objects.bulk_create(problems, batch_size=CHUNK_SIZE)
    return len(problems)


def _store_counts(batch: StagingBatch) -> dict[str, int]:
    """Recount valid, invalid and excluded customers into the batch's counters."""
    counts = StagedCustomer.objects.filter(batch=batch).aggregate(
        valid=Count("pk", filter=Q(is_excluded=False, is_valid=True)),
        invalid=Count("pk", filter=Q(is_excluded=False, is_valid=False)),
        excluded=Count("pk", filter=Q(is_excluded=True)),
    )
    StagingBatch.objects.filter(pk=batch.pk).update(
        valid_count=counts["valid"],
        invalid_count=counts["invalid"],
        excluded_count=counts["excluded"],
    )
    return counts


def batch_validate(*, batch: StagingBatch, user) -> ValidationSummary:
    """Check every customer of ``batch`` against the contract and record what is wrong.

    The batch becomes ``validated`` when no customer left to send is invalid and at least
    one will be sent; otherwise it is (or goes back to) ``draft``. Approved and submitted
    batches are refused. Runs in one transaction holding the batch's row lock, so an
    import or edit (which takes the same lock) waits rather than interleaves.
    """
    checker = customer_checker(strict=True)
    with transaction.atomic():
        locked = StagingBatch.objects.select_for_update().get(pk=batch.pk)
        if not locked.is_editable:
            raise BatchStateError(
                ERR_VALIDATE_STATE
                % {"batch": locked.name, "status": locked.get_status_display().lower()},
                code="state",
            )
        auto_excluded = _auto_excluded(locked)
        CustomerProblem.objects.filter(batch=locked).delete()

        elsewhere = _flag_children_elsewhere(locked)
        problem_count = elsewhere
        for rows in _customer_rows(locked):
            problem_count += _validate_chunk(
                batch=locked, rows=rows, checker=checker, auto_excluded=auto_excluded
            )
        problem_count += _flag_duplicate_emails(locked)
        counts = _store_counts(locked)

        is_ready = counts["invalid"] == 0 and counts["valid"] > 0 and elsewhere == 0
        now = timezone.now()
        if is_ready and locked.status == Status.DRAFT:
            batch_transition(
                batch=locked,
                to=Status.VALIDATED,
                expected=(Status.DRAFT,),
                validated_at=now,
                validated_by=user,
            )
        elif is_ready:
            StagingBatch.objects.filter(pk=locked.pk).update(
                validated_at=now, validated_by=user, updated_at=now
            )
        elif locked.status == Status.VALIDATED:
            batch_transition(
                batch=locked,
                to=Status.DRAFT,
                expected=(Status.VALIDATED,),
                validated_at=None,
                validated_by=None,
            )
    batch.refresh_from_db()
    logger.info(
        "Batch %s validated by %s: %d valid, %d invalid, %d excluded, %d problems.",
        batch.pk,
        user,
        counts["valid"],
        counts["invalid"],
        counts["excluded"],
        problem_count,
    )
    return ValidationSummary(
        valid=counts["valid"],
        invalid=counts["invalid"],
        excluded=counts["excluded"],
        problem_count=problem_count,
        status=batch.status,
    )


def customers_set_excluded(
    *, batch: StagingBatch, customer_ids: list[int], excluded: bool, reason: str = "", user
) -> int:
    """Exclude customers of ``batch`` from sending (or include them again).

    Refused for approved and submitted batches; a validated batch goes back to draft.
    Returns how many customers were updated (ids outside the batch are ignored).
    """
    reason = reason.strip() if excluded else ""
    if len(reason) > _REASON_MAX:
        raise InvalidInput(ERR_REASON_TOO_LONG % {"max": _REASON_MAX}, code="reason")
    updated = 0
    with transaction.atomic():
        locked = batch_mark_edited(batch=batch, user=user)
        for ids in _chunked(list(customer_ids)):
            updated += StagedCustomer.objects.filter(batch=locked, pk__in=ids).update(
                is_excluded=excluded, exclusion_reason=reason
            )
        _store_counts(locked)
    batch.refresh_from_db()
    logger.info(
        "Batch %s: %d customers %s by %s.",
        batch.pk,
        updated,
        "excluded" if excluded else "included",
        user,
    )
    return updated


def customers_set_resend(
    *, batch: StagingBatch, customer_ids: list[int], resend: bool, user
) -> int:
    """Tick or untick "send again" for customers an earlier batch already sent.

    Ticking it includes back the customers validation had excluded for that reason; the
    next validation excludes them again if it is unticked. Refused for approved and
    submitted batches; a validated batch goes back to draft. Returns how many were updated.
    """
    updated = 0
    with transaction.atomic():
        locked = batch_mark_edited(batch=batch, user=user)
        for ids in _chunked(list(customer_ids)):
            customers = StagedCustomer.objects.filter(batch=locked, pk__in=ids)
            updated += customers.update(resend=resend)
            if resend:
                included = _auto_excluded(locked, customer_ids=ids)
                customers.filter(pk__in=included).update(is_excluded=False, exclusion_reason="")
                CustomerProblem.objects.filter(
                    batch=locked, code=Code.ALREADY_SENT, customer_id__in=ids
                ).delete()
        _store_counts(locked)
    batch.refresh_from_db()
    logger.info(
        "Batch %s: send again %s for %d customers by %s.",
        batch.pk,
        "ticked" if resend else "unticked",
        updated,
        user,
    )
    return updated
