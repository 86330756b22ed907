"""The sandbox's behaviour: token issuing, customers/migrate and the history's two migrate
endpoints (``history``), faults, and what arrived.

A migrate request goes through, in order: the network jitter (it arrives a drawn moment
later), the bearer token (401), the next scripted answer, the rate limit (429, shared by
every process through a locked row; the configured clock says which moment counts),
injected faults (500, 429, slow), the body (415, 400, 413), the contract (422 naming
customer and field), the account's uniqueness of ``id`` and ``email`` and the rejected ids
(422 naming no customer), and finally acceptance (201). A slow answer is processed first
and answered late: it models an answer lost after Masivo accepted the request. The
history's endpoints (transactions, events) take the same steps up to the body, the rate
limit included: Masivo counts the three against one budget.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hmac
import random
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from migrations_jobs.sandbox.answers import RateState, Refusal, SandboxAnswer
from migrations_jobs.sandbox.history import history_accept, history_check
from migrations_jobs.sandbox.intake import (
    ERR_INVALID_ENTRY,
    MAX_CUSTOMERS,
    body_parse,
    contract_check,
    customers_accept,
)
from migrations_jobs.sandbox.models import (
    SandboxConfig,
    SandboxCustomer,
    SandboxHistoryEntry,
    SandboxRateWindow,
    SandboxRequest,
    SandboxScriptedAnswer,
    SandboxTokenRequest,
)
from migrations_jobs.sandbox.ratelimit import (
    ERR_RATE_LIMITED,
    Arrival,
    rate_window_snapshot,
    rate_window_take,
    request_arrival,
)
from migrations_jobs.sandbox.tokens import (
    sandbox_token_expiry,
    sandbox_token_issue,
    sandbox_token_problem,
)

SCRIPT_CLAIM_ATTEMPTS = 50
_SQLITE_LOCK = threading.Lock()

ERR_UNAUTHORIZED = "Unauthorized"
DETAIL_BAD_API_KEY = "Missing or invalid API key"
DETAIL_NO_BEARER = "Missing bearer token"
DETAIL_INJECTED = "Injected by the sandbox"
DETAIL_SCRIPTED = "Scripted sandbox answer"
ERR_UNKNOWN_FIELD = "Unknown sandbox configuration field(s): %(names)s"
ERR_STATUS_CODE = "A scripted status code must be between 100 and 599."
ERR_DELAY = "A scripted delay must not be negative."

CONFIG_FIELDS = frozenset(
    f.name for f in SandboxConfig._meta.concrete_fields if f.name not in ("id", "updated_at")
)


# --- configuration and inspection -------------------------------------------------------------


def sandbox_reset() -> None:
    """Forget every request, customer, history entry, token request and scripted answer;
    rate window and configuration go back to the ``SANDBOX_*`` settings."""
    with transaction.atomic():
        SandboxHistoryEntry.objects.all().delete()
        SandboxCustomer.objects.all().delete()
        SandboxRequest.objects.all().delete()
        SandboxScriptedAnswer.objects.all().delete()
        SandboxTokenRequest.objects.all().delete()
        SandboxRateWindow.objects.all().delete()
        SandboxConfig.objects.all().delete()


def sandbox_configure(**fields: Any) -> SandboxConfig:
    """Change the sandbox's configuration: any field of ``SandboxConfig``, e.g.
    ``sandbox_configure(hourly_cap=3)`` or ``sandbox_configure(rate_clock="processing",
    jitter_s=0.05)``."""
    unknown = sorted(set(fields) - CONFIG_FIELDS)
    if unknown:
        raise ValueError(ERR_UNKNOWN_FIELD % {"names": ", ".join(unknown)})
    with transaction.atomic():
        config = SandboxConfig.current()
        for name, value in fields.items():
            setattr(config, name, value)
        config.full_clean()
        config.save()
    return config


def sandbox_script(
    *, status_code: int, retry_after_s: int | None = None, delay_s: float = 0.0
) -> SandboxScriptedAnswer:
    """Queue an answer for the next unscripted migrate request (201: process normally)."""
    if not 100 <= status_code <= 599:
        raise ValueError(ERR_STATUS_CODE)
    if delay_s < 0:
        raise ValueError(ERR_DELAY)
    return SandboxScriptedAnswer.objects.create(
        status_code=status_code, retry_after_s=retry_after_s, delay_s=delay_s
    )


def sandbox_arrivals() -> dict[str, Any]:
    """What reached customers/migrate: requests by status, accepted requests, distinct
    customers, customer receipts and duplicate receipts (at-least-once delivery), token
    requests. (The history's: ``history.sandbox_history_arrivals``.)"""
    requests = SandboxRequest.objects.filter(kind=SandboxRequest.Kind.CUSTOMERS)
    accepted = requests.filter(is_accepted=True).aggregate(
        requests=Count("pk"), receipts=Sum("customer_count")
    )
    receipts = accepted["receipts"] or 0
    customers = SandboxCustomer.objects.count()
    statuses = dict(
        requests.values_list("status_code").annotate(n=Count("pk")).order_by("status_code")
    )
    tokens = SandboxTokenRequest.objects.aggregate(
        requests=Count("pk"), granted=Count("pk", filter=Q(is_granted=True))
    )
    return {
        "requests": sum(statuses.values()),
        "status_counts": statuses,
        "accepted_requests": accepted["requests"],
        "customers": customers,
        "receipts": receipts,
        "duplicate_receipts": receipts - customers,
        "token_requests": tokens["requests"],
        "tokens_issued": tokens["granted"],
    }


def sandbox_received_ids() -> set[str]:
    """Legacy ids of every customer the sandbox's account holds."""
    return set(SandboxCustomer.objects.values_list("legacy_id", flat=True))


# --- auth -------------------------------------------------------------------------------------


def _serialized() -> contextlib.AbstractContextManager:
    """On SQLite, one sandbox request at a time in this process.

    SQLite takes one writer at a time anyway; serializing here spares its lock waits, and
    keeps threads apart when they share one connection (the in-memory test database is
    shared by the live server's threads). Other databases rely on their row locks.
    """
    return _SQLITE_LOCK if connection.vendor == "sqlite" else contextlib.nullcontext()


def sandbox_authorize(*, api_key: str | None) -> SandboxAnswer:
    """``GET auth/authorize``: a token for the right ``x-api-key``, else 401."""
    with _serialized():
        return _authorize(api_key=api_key)


def _authorize(*, api_key: str | None) -> SandboxAnswer:
    expected = getattr(settings, "SANDBOX_API_KEY", "")
    granted = bool(expected) and hmac.compare_digest(
        (api_key or "").encode(), str(expected).encode()
    )
    if not granted:
        SandboxTokenRequest.objects.create(is_granted=False)
        return SandboxAnswer(
            status_code=401, payload={"error": ERR_UNAUTHORIZED, "details": DETAIL_BAD_API_KEY}
        )
    token = sandbox_token_issue(lifetime_s=SandboxConfig.current().token_lifetime_s)
    expires_at = dt.datetime.fromtimestamp(sandbox_token_expiry(token=token), tz=dt.UTC)
    SandboxTokenRequest.objects.create(is_granted=True, expires_at=expires_at)
    return SandboxAnswer(status_code=200, payload={"data": token})


def _bearer_problem(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return DETAIL_NO_BEARER
    return sandbox_token_problem(token=token.strip())


# --- migrate ----------------------------------------------------------------------------------


@dataclass
class _Progress:
    """What a migrate request has come to so far, for the record of a refusal."""

    started: float = field(default_factory=time.monotonic)
    delay: float = 0.0
    rate: RateState | None = None
    customer_count: int = 0
    kind: str = SandboxRequest.Kind.CUSTOMERS


def sandbox_migrate(
    *,
    authorization: str | None,
    content_type: str | None,
    body: bytes | None,
    arrived_at: dt.datetime | None = None,
    processed_at: dt.datetime | None = None,
    kind: str = SandboxRequest.Kind.CUSTOMERS,
) -> SandboxAnswer:
    """``POST api/storefront/v1/customers/migrate`` (``kind``: customers), or its
    ``/transactions`` or ``/events`` (the history's). ``body`` is None when it was too big
    to read. ``arrived_at`` is when the request reached the server (the middleware's
    stamp; None if it was not stamped), ``processed_at`` when the view began to handle it
    (now if not given): the configuration's clock says which one the rate limiter counts,
    as a gateway in front of Masivo would count arrivals, and not when this process got
    round to them. A drawn network jitter makes the request arrive later: it is slept here,
    before the request is decided, and the moment counted is the stamp plus the jitter.
    The answer's delay is for the caller to sleep: nothing is held meanwhile."""
    processed_at = processed_at or timezone.now()
    with _serialized():
        config = SandboxConfig.current()
    arrival = request_arrival(config=config, arrived_at=arrived_at, processed_at=processed_at)
    if arrival.jitter_s > 0:
        # A packet held up on the network: nothing of the request happens meanwhile.
        time.sleep(max(0.0, (arrival.counted_at - timezone.now()).total_seconds()))
    with _serialized():
        progress = _Progress(kind=kind)
        try:
            return _migrate_steps(
                config=config,
                authorization=authorization,
                content_type=content_type,
                body=body,
                arrival=arrival,
                progress=progress,
            )
        except Refusal as refusal:
            return _refused(refusal=refusal, config=config, arrival=arrival, progress=progress)


def _migrate_steps(
    *,
    config: SandboxConfig,
    authorization: str | None,
    content_type: str | None,
    body: bytes | None,
    arrival: Arrival,
    progress: _Progress,
) -> SandboxAnswer:
    """The steps of the module's docstring, each raising ``Refusal`` to stop the request."""
    problem = _bearer_problem(authorization)
    if problem:
        raise Refusal(
            status_code=401,
            reason=SandboxRequest.Reason.UNAUTHORIZED,
            error=ERR_UNAUTHORIZED,
            details=problem,
        )
    scripted = _script_claim()
    if scripted is not None:
        progress.delay = scripted.delay_s
        if scripted.status_code != 201:
            raise _scripted_refusal(scripted=scripted, config=config)
    progress.rate = rate_window_take(config=config, now=arrival.counted_at)
    if scripted is None:
        progress.delay = _inject_faults(config=config)
    is_history = progress.kind != SandboxRequest.Kind.CUSTOMERS
    payload, customers = body_parse(
        content_type=content_type, body=body, max_customers=None if is_history else MAX_CUSTOMERS
    )
    progress.customer_count = len(customers)
    if is_history:
        history_check(kind=progress.kind, payload=payload, customers=customers)
    else:
        contract_check(payload=payload, customers=customers)
    accept = partial(history_accept, kind=progress.kind) if is_history else customers_accept
    return accept(
        config=config,
        customers=customers,
        received_at=arrival.counted_at,
        jitter_s=arrival.jitter_s,
        started=progress.started,
        delay=progress.delay,
        rate=progress.rate,
    )


def _refused(
    *,
    refusal: Refusal,
    config: SandboxConfig,
    arrival: Arrival,
    progress: _Progress,
) -> SandboxAnswer:
    """Record a refused request and answer it in Masivo's shape."""
    rate = progress.rate or refusal.rate or rate_window_snapshot(config=config)
    headers = rate.headers()
    if refusal.retry_after_s is not None:
        headers["Retry-After"] = str(refusal.retry_after_s)
    SandboxRequest.objects.create(
        kind=progress.kind,
        received_at=arrival.counted_at,
        status_code=refusal.status_code,
        reason=refusal.reason,
        details=refusal.details[:2000],
        customer_count=progress.customer_count,
        duration_s=time.monotonic() - progress.started + progress.delay,
        delay_s=progress.delay,
        jitter_s=arrival.jitter_s,
        is_accepted=False,
    )
    return SandboxAnswer(
        status_code=refusal.status_code,
        payload={"error": refusal.error, "details": refusal.details},
        headers=headers,
        delay_s=progress.delay,
    )


def _script_claim() -> SandboxScriptedAnswer | None:
    """Take the oldest unconsumed scripted answer; concurrent requests never share one."""
    for _attempt in range(SCRIPT_CLAIM_ATTEMPTS):
        candidate = (
            SandboxScriptedAnswer.objects.filter(consumed_at__isnull=True).order_by("pk").first()
        )
        if candidate is None:
            return None
        claimed = SandboxScriptedAnswer.objects.filter(
            pk=candidate.pk, consumed_at__isnull=True
        ).update(consumed_at=timezone.now())
        if claimed:
            return candidate
    return None


def _scripted_refusal(*, scripted: SandboxScriptedAnswer, config: SandboxConfig) -> Refusal:
    status = scripted.status_code
    retry_after = scripted.retry_after_s
    if retry_after is None and status == 429:
        retry_after = config.retry_after_s
    if status == 422:
        error = ERR_INVALID_ENTRY
    else:
        try:
            error = HTTPStatus(status).phrase
        except ValueError:
            error = f"HTTP {status}"
    return Refusal(
        status_code=status,
        reason=SandboxRequest.Reason.SCRIPTED,
        error=error,
        details=DETAIL_SCRIPTED,
        retry_after_s=retry_after,
    )


def _inject_faults(*, config: SandboxConfig) -> float:
    """Answer 500 or 429 for a share of requests; returns the delay of a slow answer."""
    # Fault injection draws, not security: the module's generator is fine.
    if config.fail_500_rate and random.random() < config.fail_500_rate:  # noqa: S311
        raise Refusal(
            status_code=500,
            reason=SandboxRequest.Reason.INJECTED_500,
            error=HTTPStatus(500).phrase,
            details=DETAIL_INJECTED,
        )
    if config.fail_429_rate and random.random() < config.fail_429_rate:  # noqa: S311
        raise Refusal(
            status_code=429,
            reason=SandboxRequest.Reason.INJECTED_429,
            error=ERR_RATE_LIMITED,
            details=DETAIL_INJECTED,
            retry_after_s=config.retry_after_s,
        )
    if config.slow_rate and random.random() < config.slow_rate:  # noqa: S311
        return config.slow_s
    return 0.0
