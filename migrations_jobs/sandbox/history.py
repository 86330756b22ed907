"""The history's migrate endpoints: ``customers/migrate/transactions`` and
``customers/migrate/events`` (CONTRACT.md, "History: transactions and events").

They go through the customers endpoint's steps (``services``): the bearer token, the
scripted answers, the one rate limiter that customers, transactions and events share, the
injected faults, the body. Then their own: the contract, as the console's strict history
serializers state it (422 naming the first invalid customer entry, or the limit of the
request it breaks); the rejected ids (422 naming no customer); with
``refuse_history_first`` on, a customer id that customers/migrate has not brought yet
(422 naming the ids); and acceptance (201), which keeps one ``SandboxHistoryEntry`` per
customer entry, noting whether the account held the customer then.
"""

from __future__ import annotations

import datetime as dt
import time

from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone

from customers.contract import MigrateEventsRequestSerializer, MigrateTransactionsRequestSerializer
from migrations_jobs.sandbox.answers import RateState, Refusal, SandboxAnswer
from migrations_jobs.sandbox.intake import (
    DETAIL_REJECTED,
    ERR_INVALID_ENTRY,
    LOOKUP_BLOCK,
    contract_check,
)
from migrations_jobs.sandbox.models import (
    SINGLETON_PK,
    SandboxConfig,
    SandboxCustomer,
    SandboxHistoryEntry,
    SandboxRateWindow,
    SandboxRequest,
)

Kind = SandboxRequest.Kind

ACCEPTED_MESSAGES = {
    Kind.TRANSACTIONS: "Customer transactions enqueued successfully",
    Kind.EVENTS: "Customer events enqueued successfully",
}
SERIALIZERS = {
    Kind.TRANSACTIONS: MigrateTransactionsRequestSerializer,
    Kind.EVENTS: MigrateEventsRequestSerializer,
}
# The list each customer entry carries.
ITEMS = {Kind.TRANSACTIONS: "transactions", Kind.EVENTS: "events"}
DETAIL_HISTORY_FIRST = "History arrived before its customer: %(ids)s"
DETAIL_MORE_IDS = " (and %(count)d more)"
MAX_NAMED_IDS = 20


def history_check(*, kind: str, payload: dict, customers: list) -> None:
    """The contract of ``kind``'s body, strict: a bad body is 422, whatever is wrong."""
    contract_check(
        payload=payload,
        customers=customers,
        serializer_class=SERIALIZERS[kind],
        envelope_status=422,
    )


def _refused(reason: str, details: str) -> Refusal:
    return Refusal(status_code=422, reason=reason, error=ERR_INVALID_ENTRY, details=details)


def _known_ids(ids: list[str]) -> set[str]:
    """Which of ``ids`` the account holds as customers."""
    known: set[str] = set()
    for start in range(0, len(ids), LOOKUP_BLOCK):
        block = ids[start : start + LOOKUP_BLOCK]
        known.update(
            SandboxCustomer.objects.filter(legacy_id__in=block).values_list("legacy_id", flat=True)
        )
    return known


def _history_first_refusal(missing: list[str]) -> Refusal:
    details = DETAIL_HISTORY_FIRST % {"ids": ", ".join(missing[:MAX_NAMED_IDS])}
    if len(missing) > MAX_NAMED_IDS:
        details += DETAIL_MORE_IDS % {"count": len(missing) - MAX_NAMED_IDS}
    return _refused(SandboxRequest.Reason.HISTORY_FIRST, details)


def history_accept(
    *,
    kind: str,
    config: SandboxConfig,
    customers: list[dict],
    received_at: dt.datetime,
    jitter_s: float,
    started: float,
    delay: float,
    rate: RateState,
) -> SandboxAnswer:
    """Check the account's rules for a valid history body, then keep its customer entries
    (``customers``, as the body names them)."""
    ids = [str(entry["id"]) for entry in customers]
    counts = [len(entry[ITEMS[kind]]) for entry in customers]
    if set(map(str, config.reject_ids or ())) & set(ids):
        raise _refused(SandboxRequest.Reason.CONFLICT, DETAIL_REJECTED)
    with transaction.atomic():
        # The account's lock, as for customers: the customers it holds do not change while
        # this request is decided.
        SandboxRateWindow.objects.select_for_update().filter(pk=SINGLETON_PK).first()
        known = _known_ids(ids)
        missing = [legacy_id for legacy_id in ids if legacy_id not in known]
        if missing and config.refuse_history_first:
            raise _history_first_refusal(missing)
        request = SandboxRequest.objects.create(
            kind=kind,
            received_at=received_at,
            status_code=201,
            reason=SandboxRequest.Reason.ACCEPTED,
            customer_count=len(customers),
            item_count=sum(counts),
            duration_s=0.0,
            delay_s=delay,
            jitter_s=jitter_s,
            is_accepted=True,
        )
        now = timezone.now()
        SandboxHistoryEntry.objects.bulk_create(
            [
                SandboxHistoryEntry(
                    kind=kind,
                    legacy_id=legacy_id,
                    item_count=len(entry[ITEMS[kind]]),
                    items=entry[ITEMS[kind]],
                    request=request,
                    has_customer=legacy_id in known,
                    received_at=now,
                )
                for legacy_id, entry in zip(ids, customers, strict=True)
            ],
            batch_size=LOOKUP_BLOCK,
        )
        duration = time.monotonic() - started + delay
        SandboxRequest.objects.filter(pk=request.pk).update(duration_s=duration)
    return SandboxAnswer(
        status_code=201,
        payload={"message": ACCEPTED_MESSAGES[kind]},
        headers=rate.headers(),
        delay_s=delay,
    )


def sandbox_history_arrivals(*, kind: str) -> dict[str, object]:
    """What reached ``customers/migrate/<kind>``: requests by status, accepted requests,
    distinct customer ids, entries and items received, customers whose history came in
    more than one entry (never right for transactions), and entries that arrived before
    their customer."""
    requests = SandboxRequest.objects.filter(kind=kind)
    statuses = dict(
        requests.values_list("status_code").annotate(n=Count("pk")).order_by("status_code")
    )
    accepted = requests.filter(is_accepted=True).aggregate(
        requests=Count("pk"), entries=Sum("customer_count"), items=Sum("item_count")
    )
    entries = SandboxHistoryEntry.objects.filter(kind=kind)
    by_id = entries.values("legacy_id").annotate(n=Count("pk"))
    return {
        "requests": sum(statuses.values()),
        "status_counts": statuses,
        "accepted_requests": accepted["requests"],
        "customers": by_id.count(),
        "entries": accepted["entries"] or 0,
        "items": accepted["items"] or 0,
        "customers_received_again": by_id.filter(n__gt=1).count(),
        "before_customer": entries.filter(has_customer=False).count(),
    }


def sandbox_history_ids(*, kind: str) -> set[str]:
    """Legacy ids whose transactions (or events) the sandbox has accepted."""
    return set(SandboxHistoryEntry.objects.filter(kind=kind).values_list("legacy_id", flat=True))
