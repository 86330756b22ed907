"""The pace of requests to Masivo, shared by every worker process and host.

Masivo allows one migrate request every ``MIGRATION_MIN_INTERVAL_S`` seconds and
``MIGRATION_HOURLY_CAP`` requests an hour (CONTRACT.md). The console paces itself to those
limits instead of discovering them through 429s. The state lives in the database, so every
worker on every host sees the same clock of slots:

- ``PacingState`` (one row, locked for every decision) holds ``next_slot_at``: no request
  may leave before it. Booking a slot moves it to ``now + interval`` (and a small margin);
  a ``Retry-After``, an exhausted ``X-RateLimit-Remaining``, or an answer slower than the
  quickest recent one pushes it further.
- ``PacingSlot`` rows are the slots booked in the last hour, for the hourly cap (a sliding
  window: a slot frees exactly one hour after it was booked).

Hosts are assumed to keep their clocks in sync (NTP); the database serialises decisions.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from migrations_jobs.models import PACING_PK, ChunkAttempt, PacingSlot, PacingState

HOUR = dt.timedelta(hours=1)
# X-RateLimit-Reset above this is an epoch time in seconds; below it, seconds from now.
EPOCH_THRESHOLD_S = 1_000_000_000
# Slots are booked a little longer than the limits ask: the time between booking a slot
# and Masivo counting the request varies (connection, scheduling, Masivo's own queue), and
# that jitter must never make two requests look closer than the interval. The margin is a
# fraction of the interval, at most MARGIN_S: the jitter does not grow with the interval,
# and every request pays the margin, so a fixed one would cost a short interval dearly
# (0.05 s is a tenth of a 0.5 s interval, a hundredth of the default 5 s).
MARGIN_S = 0.05
# 1% proved too little under load (a 429 from the sandbox's limiter at a 0.5 s interval).
MARGIN_FRACTION = 0.03
# Longest push a rate-limit header may cause, so a nonsense header cannot stall every job.
MAX_DEFER_S = 2 * 60 * 60
# How many recent accepted requests the quickest round trip is taken from, and how many
# must be known for it to count.
QUICKEST_OF = 20
QUICKEST_KNOWN = 5


def pacing_margin_s(*, interval_s: float) -> float:
    """How much later than ``interval_s`` after a booking the next slot opens."""
    return min(MARGIN_S, MARGIN_FRACTION * max(0.0, interval_s))


def _locked_state() -> PacingState:
    """The pacing row, locked until the caller's transaction ends; created on first use."""
    state = PacingState.objects.select_for_update().filter(pk=PACING_PK).first()
    if state is None:
        PacingState.objects.bulk_create([PacingState(pk=PACING_PK)], ignore_conflicts=True)
        state = PacingState.objects.select_for_update().get(pk=PACING_PK)
    return state


def pacing_reserve(*, now: dt.datetime | None = None) -> float:
    """Book the slot for one request now, or say how long to wait.

    Returns 0.0 when the caller may send at once (the slot is then booked: the next one is
    ``MIGRATION_MIN_INTERVAL_S`` plus ``pacing_margin_s`` later and the request counts
    against the hourly cap), else
    the seconds until a slot may be free; nothing is booked then. An interval of 0 and a
    cap of 0 each turn their limit off.

    Call it inside the transaction that also marks the request as started, so a refusal to
    start rolls the booking back.
    """
    interval = max(0.0, float(settings.MIGRATION_MIN_INTERVAL_S))
    cap = max(0, int(settings.MIGRATION_HOURLY_CAP))
    with transaction.atomic():
        state = _locked_state()
        now = now or timezone.now()
        wait = 0.0
        if state.next_slot_at is not None and state.next_slot_at > now:
            wait = (state.next_slot_at - now).total_seconds()
        if cap:
            window_start = now - HOUR - dt.timedelta(seconds=MARGIN_S)
            booked = list(
                PacingSlot.objects.filter(booked_at__gt=window_start)
                .order_by("-booked_at")
                .values_list("booked_at", flat=True)[:cap]
            )
            if len(booked) >= cap:
                # The oldest of the last ``cap`` slots must leave the window first.
                wait = max(wait, (booked[-1] - window_start).total_seconds())
        if wait > 0:
            return wait
        if interval:
            margin = pacing_margin_s(interval_s=interval)
            state.next_slot_at = now + dt.timedelta(seconds=interval + margin)
            state.save(update_fields=["next_slot_at", "updated_at"])
        if cap:
            PacingSlot.objects.create(booked_at=now)
            PacingSlot.objects.filter(booked_at__lte=window_start).delete()
        return 0.0


def pacing_defer(*, until: dt.datetime) -> None:
    """No request may leave before ``until`` (a later ``next_slot_at`` is kept)."""
    with transaction.atomic():
        state = _locked_state()
        if state.next_slot_at is None or state.next_slot_at < until:
            state.next_slot_at = until
            state.save(update_fields=["next_slot_at", "updated_at"])


def pacing_pause_from_answer(
    *,
    retry_after_s: float | None,
    ratelimit: dict[str, int | float],
    now: dt.datetime | None = None,
) -> dt.datetime | None:
    """When Masivo's answer says to hold off: ``Retry-After``, or ``X-RateLimit-Reset``
    when ``X-RateLimit-Remaining`` is 0. None when it says nothing of the kind."""
    now = now or timezone.now()
    pauses: list[float] = []
    if retry_after_s is not None and retry_after_s > 0:
        pauses.append(float(retry_after_s))
    remaining, reset = ratelimit.get("remaining"), ratelimit.get("reset")
    if remaining is not None and remaining <= 0 and reset is not None and reset > 0:
        if reset > EPOCH_THRESHOLD_S:
            pauses.append(reset - now.timestamp())
        else:
            pauses.append(float(reset))
    pauses = [min(p, MAX_DEFER_S) for p in pauses if p > 0]
    if not pauses:
        return None
    return now + dt.timedelta(seconds=max(pauses))


def _quickest_round_trip_s() -> float:
    """The shortest of the last ``QUICKEST_OF`` accepted requests, from sending to answer;
    0 while fewer than ``QUICKEST_KNOWN`` are recorded (the first requests to a server, often
    its slowest, are then compared with nothing)."""
    durations = list(
        ChunkAttempt.objects.filter(outcome=ChunkAttempt.Outcome.ACCEPTED, duration_s__isnull=False)
        .order_by("-pk")
        .values_list("duration_s", flat=True)[:QUICKEST_OF]
    )
    return min(durations) if len(durations) >= QUICKEST_KNOWN else 0.0


def pacing_slot_after_answer(*, sent_at: dt.datetime, round_trip_s: float) -> dt.datetime | None:
    """The earliest next slot that a slow answer calls for, or None.

    Masivo counts a request somewhere between its sending and its answer. The slot booked
    for the next request assumed the usual delay before that moment; a request that took
    longer than the quickest recent one (by ``extra``) may have been counted up to
    ``extra`` later, so the next one waits ``extra`` longer. This absorbs a late request
    (a busy host, a slow connection, a cold server) instead of paying for it with a margin
    on every request.
    """
    interval = max(0.0, float(settings.MIGRATION_MIN_INTERVAL_S))
    if not interval:
        return None
    quickest = _quickest_round_trip_s()
    if round_trip_s <= quickest:
        return None
    extra = round_trip_s - quickest
    return sent_at + dt.timedelta(seconds=extra + interval + pacing_margin_s(interval_s=interval))


def pacing_note_answer(
    *,
    retry_after_s: float | None,
    ratelimit: dict[str, int | float],
    now: dt.datetime | None = None,
    sent_at: dt.datetime | None = None,
    round_trip_s: float | None = None,
) -> dt.datetime | None:
    """Honour what an answer says about the rate limit for every worker; returns the time
    no request may leave before, if the answer set one. With ``sent_at`` and
    ``round_trip_s`` (when the request left, how long its answer took), a slow answer also
    holds the next slot back (see ``pacing_slot_after_answer``)."""
    until = pacing_pause_from_answer(retry_after_s=retry_after_s, ratelimit=ratelimit, now=now)
    later = [until] if until is not None else []
    if sent_at is not None and round_trip_s is not None:
        slot = pacing_slot_after_answer(sent_at=sent_at, round_trip_s=round_trip_s)
        if slot is not None:
            later.append(slot)
    if later:
        pacing_defer(until=max(later))
    return until
