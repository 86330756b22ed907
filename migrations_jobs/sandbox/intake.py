"""A migrate request's body: parsing, the contract (the console's own, strict: compiled for
a customers request, the serializer to word a refusal), and the account's rules (``id``
and ``email`` unique, rejected ids) before acceptance. Parsing and the contract serve the
history's endpoints too (``history``)."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from rest_framework.serializers import Serializer

from customers.bulk import AnyOf, rows_insert
from customers.contract import MigrateRequestSerializer, request_checker
from migrations_jobs.sandbox.answers import RateState, Refusal, SandboxAnswer
from migrations_jobs.sandbox.models import (
    SINGLETON_PK,
    SandboxConfig,
    SandboxCustomer,
    SandboxRateWindow,
    SandboxRequest,
)

MAX_CUSTOMERS = 1000
LOOKUP_BLOCK = 500
MAX_DETAIL_PROBLEMS = 5

ACCEPTED_MESSAGE = "Customers batch enqueued successfully"
ERR_UNSUPPORTED_MEDIA = "Unsupported media type"
DETAIL_UNSUPPORTED_MEDIA = "Content-Type must be application/json"
ERR_BAD_REQUEST = "Bad request"
DETAIL_NOT_JSON = "The body is not valid JSON"
DETAIL_NOT_ENVELOPE = 'The body must be an object with a "customers" list'
ERR_TOO_LARGE = "Payload too large"
DETAIL_TOO_MANY = "At most %(max)d customers per request; got %(count)d"
DETAIL_BODY_TOO_BIG = "The body is too big"
ERR_INVALID_ENTRY = "Invalid customer entry"
DETAIL_CUSTOMER = 'customers[%(index)d] (id "%(id)s"): %(problems)s'
DETAIL_MORE_CUSTOMERS = " (and %(count)d more invalid customers)"
DETAIL_EMAIL_TAKEN = "A customer's email already belongs to another customer of the account"
DETAIL_ID_TWO_EMAILS = "A customer id appears with two different emails"
DETAIL_REJECTED = "A customer was refused by the account"


def body_parse(
    *, content_type: str | None, body: bytes | None, max_customers: int | None = MAX_CUSTOMERS
) -> tuple[dict, list]:
    """The envelope and its customers list; ``body`` is None when it was too big to read.
    More than ``max_customers`` entries is 413 (None: the contract's check says)."""
    if body is None:
        raise Refusal(
            status_code=413,
            reason=SandboxRequest.Reason.TOO_LARGE,
            error=ERR_TOO_LARGE,
            details=DETAIL_BODY_TOO_BIG,
        )
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise Refusal(
            status_code=415,
            reason=SandboxRequest.Reason.UNSUPPORTED_MEDIA,
            error=ERR_UNSUPPORTED_MEDIA,
            details=DETAIL_UNSUPPORTED_MEDIA,
        )
    try:
        payload = json.loads(body, parse_constant=_refuse_constant)
    except ValueError as error:
        raise Refusal(
            status_code=400,
            reason=SandboxRequest.Reason.BAD_REQUEST,
            error=ERR_BAD_REQUEST,
            details=DETAIL_NOT_JSON,
        ) from error
    customers = payload.get("customers") if isinstance(payload, dict) else None
    if not isinstance(customers, list):
        raise Refusal(
            status_code=400,
            reason=SandboxRequest.Reason.BAD_REQUEST,
            error=ERR_BAD_REQUEST,
            details=DETAIL_NOT_ENVELOPE,
        )
    if max_customers is not None and len(customers) > max_customers:
        raise Refusal(
            status_code=413,
            reason=SandboxRequest.Reason.TOO_LARGE,
            error=ERR_TOO_LARGE,
            details=DETAIL_TOO_MANY % {"max": max_customers, "count": len(customers)},
        )
    return payload, customers


def _refuse_constant(name: str) -> None:
    # NaN and Infinity are not JSON, whatever Python's parser accepts.
    raise ValueError(name)


def _flatten(errors: Any, prefix: str = "") -> list[tuple[str, str]]:
    """DRF's nested errors as ``[("balance[0].amount", message), ...]``."""
    found: list[tuple[str, str]] = []
    if isinstance(errors, dict):
        for key, value in errors.items():
            if isinstance(key, int):
                # An entry of a list, when DRF keys a list's errors by index.
                found.extend(_flatten(value, f"{prefix}[{key}]"))
                continue
            name = "" if key == "non_field_errors" else str(key)
            path = f"{prefix}.{name}" if prefix and name else (prefix or name)
            found.extend(_flatten(value, path))
    elif isinstance(errors, list):
        if all(isinstance(e, str) for e in errors):
            found.extend((prefix, str(message)) for message in errors)
        else:
            for index, value in enumerate(errors):
                if value:
                    found.extend(_flatten(value, f"{prefix}[{index}]"))
    else:
        found.append((prefix, str(errors)))
    return found


def _entry_errors(errors: Any) -> dict[int, Any]:
    """Per-customer errors by position, from a ListSerializer's list (or dict) of them."""
    if isinstance(errors, list) and any(isinstance(e, dict) for e in errors):
        return {index: value for index, value in enumerate(errors) if value}
    if isinstance(errors, dict) and errors and all(str(k).isdigit() for k in errors):
        return {int(k): value for k, value in errors.items() if value}
    return {}


def contract_check(
    *,
    payload: dict,
    customers: list,
    serializer_class: type[Serializer] = MigrateRequestSerializer,
    envelope_status: int = 400,
) -> None:
    """The contract, as the console's own serializer states it, in strict mode: 422 naming
    the first invalid customer entry; ``envelope_status`` when no entry is to blame (an
    empty list, an unknown key, a limit of the whole request).

    A customers request is first checked by the contract compiled into plain functions
    (``request_checker``: the same serializer's fields, rules and messages, without DRF's
    per-field machinery, about four times quicker); the serializer runs only when that
    finds a problem, to word the refusal. The checker is built per request, so a change of
    settings (the accepted choices) counts at once."""
    if serializer_class is MigrateRequestSerializer and not request_checker().check(payload):
        return
    serializer = serializer_class(data=payload, context={"strict": True})
    if serializer.is_valid():
        return
    errors = serializer.errors
    entries = _entry_errors(errors.get("customers")) if isinstance(errors, dict) else {}
    if not entries:
        problems = "; ".join(
            f"{path}: {message}" if path else message for path, message in _flatten(errors)
        )
        # The envelope itself is wrong (an empty list, an unknown key): no customer to name.
        reason, error = SandboxRequest.Reason.BAD_REQUEST, ERR_BAD_REQUEST
        if envelope_status == 422:
            reason, error = SandboxRequest.Reason.INVALID_ENTRY, ERR_INVALID_ENTRY
        raise Refusal(
            status_code=envelope_status,
            reason=reason,
            error=error,
            details=problems or DETAIL_NOT_ENVELOPE,
        )
    index = min(entries)
    entry = customers[index] if index < len(customers) else None
    legacy_id = entry.get("id", "") if isinstance(entry, dict) else ""
    pairs = _flatten(entries[index])[:MAX_DETAIL_PROBLEMS]
    details = DETAIL_CUSTOMER % {
        "index": index,
        "id": legacy_id,
        "problems": "; ".join(f"{path}: {message}" if path else message for path, message in pairs),
    }
    if len(entries) > 1:
        details += DETAIL_MORE_CUSTOMERS % {"count": len(entries) - 1}
    raise Refusal(
        status_code=422,
        reason=SandboxRequest.Reason.INVALID_ENTRY,
        error=ERR_INVALID_ENTRY,
        details=details,
    )


def _email_key(value: Any) -> str | None:
    return value.strip().lower() if isinstance(value, str) and value.strip() else None


def _conflict(details: str) -> Refusal:
    return Refusal(
        status_code=422,
        reason=SandboxRequest.Reason.CONFLICT,
        error=ERR_INVALID_ENTRY,
        details=details,
    )


@dataclass(frozen=True)
class _Identities:
    """Who a request names: how often each id comes, each id's email (case-folded), and
    each email's id."""

    receipts: Counter[str]
    emails: dict[str, str | None]
    owners: dict[str, str]


def _request_identities(customers: list[dict]) -> _Identities:
    """The request's own uniqueness rules: an id keeps one email, an email one id."""
    receipts = Counter(str(c["id"]) for c in customers)
    emails: dict[str, str | None] = {}
    owners: dict[str, str] = {}
    for entry in customers:
        legacy_id, email = str(entry["id"]), _email_key(entry.get("email"))
        if legacy_id in emails and email and emails[legacy_id] and emails[legacy_id] != email:
            raise _conflict(DETAIL_ID_TWO_EMAILS)
        emails[legacy_id] = email or emails.get(legacy_id)
        if email and owners.setdefault(email, legacy_id) != legacy_id:
            raise _conflict(DETAIL_EMAIL_TAKEN)
    return _Identities(receipts=receipts, emails=emails, owners=owners)


def _blocks(values: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(values), LOOKUP_BLOCK):
        yield values[start : start + LOOKUP_BLOCK]


def _known_customers(ids: list[str]) -> dict[str, tuple[int, str | None]]:
    """The account's customers among ``ids``: legacy id -> (pk, email)."""
    known: dict[str, tuple[int, str | None]] = {}
    for block in _blocks(ids):
        found = SandboxCustomer.objects.filter(AnyOf(F("legacy_id"), block))
        for pk, legacy_id, email in found.values_list("pk", "legacy_id", "email"):
            known[legacy_id] = (pk, email)
    return known


def _emails_check(owners: dict[str, str]) -> None:
    """Refuse the request when one of its emails belongs to another id of the account."""
    for block in _blocks(list(owners)):
        found = SandboxCustomer.objects.filter(AnyOf(F("email"), block)).values_list(
            "legacy_id", "email"
        )
        for legacy_id, email in found:
            if owners[email] != legacy_id:
                raise _conflict(DETAIL_EMAIL_TAKEN)


def _customers_create(
    *, new_ids: list[str], who: _Identities, request: SandboxRequest, now: dt.datetime
) -> None:
    """Keep the customers the account does not hold yet (PostgreSQL: one ``COPY``)."""
    rows_insert(
        model=SandboxCustomer,
        rows=[
            {
                "legacy_id": legacy_id,
                "email": who.emails[legacy_id],
                "request_id": request.pk,
                "last_request_id": request.pk,
                "times_received": who.receipts[legacy_id],
                "first_received_at": now,
                "last_received_at": now,
            }
            for legacy_id in new_ids
        ],
    )


def _customers_receive_again(
    *,
    known: dict[str, tuple[int, str | None]],
    who: _Identities,
    request: SandboxRequest,
    now: dt.datetime,
) -> None:
    """Count another receipt of customers the account holds; a new email replaces theirs."""
    by_times: dict[int, list[str]] = {}
    for legacy_id, (pk, held_email) in known.items():
        by_times.setdefault(who.receipts[legacy_id], []).append(legacy_id)
        email = who.emails[legacy_id]
        if email and email != held_email:
            # Migrating an id again with a new email updates it.
            SandboxCustomer.objects.filter(pk=pk).update(email=email)
    for times, group in by_times.items():
        for block in _blocks(group):
            SandboxCustomer.objects.filter(AnyOf(F("legacy_id"), block)).update(
                times_received=F("times_received") + times,
                last_request=request,
                last_received_at=now,
            )


def customers_accept(
    *,
    config: SandboxConfig,
    customers: list[dict],
    received_at: dt.datetime,
    jitter_s: float,
    started: float,
    delay: float,
    rate: RateState,
) -> SandboxAnswer:
    """Check the account's uniqueness rules, then keep the customers (bulk writes)."""
    who = _request_identities(customers)
    if set(map(str, config.reject_ids or ())) & who.receipts.keys():
        raise _conflict(DETAIL_REJECTED)
    with transaction.atomic():
        # The rate window's row doubles as the account's lock: one acceptance at a time,
        # so two requests never both create the same id or email.
        SandboxRateWindow.objects.select_for_update().filter(pk=SINGLETON_PK).first()
        known = _known_customers(list(who.receipts))
        _emails_check(who.owners)
        now = timezone.now()
        new_ids = [legacy_id for legacy_id in who.receipts if legacy_id not in known]
        request = SandboxRequest.objects.create(
            received_at=received_at,
            status_code=201,
            reason=SandboxRequest.Reason.ACCEPTED,
            customer_count=len(customers),
            new_count=len(new_ids),
            duplicate_count=len(customers) - len(new_ids),
            duration_s=0.0,
            delay_s=delay,
            jitter_s=jitter_s,
            is_accepted=True,
        )
        _customers_create(new_ids=new_ids, who=who, request=request, now=now)
        _customers_receive_again(known=known, who=who, request=request, now=now)
        duration = time.monotonic() - started + delay
        SandboxRequest.objects.filter(pk=request.pk).update(duration_s=duration)
    return SandboxAnswer(
        status_code=201,
        payload={"message": ACCEPTED_MESSAGE},
        headers=rate.headers(),
        delay_s=delay,
    )
