"""The pace of requests to Masivo, shared by every worker process and host.

Masivo allows one migrate request every ``MIGRATION_MIN_INTERVAL_S`` seconds and
``MIGRATION_HOURLY_CAP`` requests an hour (CONTRACT.md). The console paces itself to those
limits instead of discovering them through 429s. The state lives in the database, so every
worker on every host sees the same clock of slots:

- ``PacingState`` (one row, locked for every decision) holds ``next_slot_at``: no request
  may leave before it. A worker books a slot a few milliseconds before it opens
  (``LEAD_S``), commits, and sends when it opens, so the booking's own transaction does
  not delay the request. The next slot opens the interval (and a small margin) after it.
- The moment a request really left (its headers written to the socket, after any
  connection setup) comes back with its answer; a request that left later than its slot
  moves the next slot back by as much.
- Masivo counts a request somewhere between its leaving and its answer, normally early:
  most of an answer's time is Masivo's work after counting. A request whose answer took
  far longer than usual (``SLOW_FACTOR`` times the median of the last round trips) may
  have met a cold or busy server that counted it late, so the next slot moves back by the
  difference. Until enough round trips are known, and for the first request after
  Masivo has been idle (``IDLE_S``), the next slot opens an interval after the answer:
  the one moment by which the request was surely counted.
- A ``Retry-After`` or an exhausted ``X-RateLimit-Remaining`` pushes the slot further.
- ``PacingSlot`` rows are the slots booked in the last hour, for the hourly cap (a sliding
  window: a slot frees exactly one hour after it opened).

Requests are spaced by when they leave; what the margin has to absorb is only the
difference between two requests' trips to Masivo's limiter. Hosts are assumed to keep
their clocks in sync (NTP); the database serialises decisions.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import deque
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from migrations_jobs.models import PACING_PK, PacingSlot, PacingState

HOUR = dt.timedelta(hours=1)
# X-RateLimit-Reset above this is an epoch time in seconds; below it, seconds from now.
EPOCH_THRESHOLD_S = 1_000_000_000
# Slots open a little later than the limits ask: two requests that left exactly an
# interval apart may still reach Masivo's limiter closer than that (the network, a busy
# server). The margin is a fraction of the interval, at most MARGIN_S: that jitter does
# not grow with the interval, and every request pays the margin, so a fixed one would
# cost a short interval dearly (0.05 s is a tenth of a 0.5 s interval, a hundredth of the
# default 5 s).
MARGIN_S = 0.05
MARGIN_FRACTION = 0.02
# A slot is booked this long before it opens: time for the booking to commit, so the
# request leaves on the slot and not a commit later.
LEAD_S = 0.03
# After this long without a request, the next one may meet a cold server (a process
# starting, caches to fill) that counts it well after it arrived.
IDLE_S = 60.0
# Round trips (leaving to answer) kept to tell a usual one from a slow one; how many must
# be known first; how many times the usual one a round trip must take to count as slow.
ROUND_TRIPS_KEPT = 20
ROUND_TRIPS_KNOWN = 5
SLOW_FACTOR = 2.0
# Longest push a rate-limit header may cause, so a nonsense header cannot stall every job.
MAX_DEFER_S = 2 * 60 * 60
# What a 429 teaches: the learnt margin doubles, from a first step of this fraction of the
# interval, up to at most this fraction; each later answer keeps LEARNT_DECAY of it (a
# 429 is forgotten by half in about 35 requests), and below LEARNT_FLOOR_S it is gone.
LEARN_STEP_FRACTION = 0.02
LEARNT_MAX_FRACTION = 0.25
LEARNT_DECAY = 0.98
LEARNT_FLOOR_S = 0.0005
RATE_LIMITED = 429


def pacing_margin_s(*, interval_s: float, learnt_s: float = 0.0) -> float:
    """How much later than ``interval_s`` after a request the next slot opens: the base
    margin, plus what Masivo's 429s taught (``learnt_s``), at most ``LEARNT_MAX_FRACTION``
    of the interval in all."""
    interval = max(0.0, interval_s)
    base = min(MARGIN_S, MARGIN_FRACTION * interval)
    return min(base + max(0.0, learnt_s), max(base, LEARNT_MAX_FRACTION * interval))


def pacing_spacing_s(*, learnt_s: float = 0.0) -> float:
    """Seconds from one request leaving to the next slot: the interval and its margin;
    0 when the interval is off."""
    interval = max(0.0, float(settings.MIGRATION_MIN_INTERVAL_S))
    if not interval:
        return 0.0
    return interval + pacing_margin_s(interval_s=interval, learnt_s=learnt_s)


def margin_learn(*, learnt_s: float, interval_s: float, rate_limited: bool) -> float:
    """The learnt margin after one more answer: a 429 doubles it (from a first step of
    ``LEARN_STEP_FRACTION`` of the interval); every other answer lets it decay by
    ``LEARNT_DECAY``, so a server that counts differently is learnt, then forgotten
    slowly when it no longer does."""
    if rate_limited:
        step = LEARN_STEP_FRACTION * max(0.0, interval_s)
        return min(max(2 * learnt_s, step), LEARNT_MAX_FRACTION * max(0.0, interval_s))
    learnt = learnt_s * LEARNT_DECAY
    return learnt if learnt >= LEARNT_FLOOR_S else 0.0


@dataclass(frozen=True)
class Booking:
    """What ``pacing_reserve`` decided: a booked slot, or how long to wait for one."""

    # When the booked request may leave (now, or up to ``LEAD_S`` later); None if not booked.
    leave_at: dt.datetime | None = None
    # Seconds to wait before asking again (nothing was booked); 0 when booked.
    wait_s: float = 0.0

    @property
    def is_booked(self) -> bool:
        return self.leave_at is not None


class DepartureLag:
    """How long after a process hands a request to the client it leaves (token lookup,
    building it, the connection pool): the quickest of this process's recent requests.

    A worker starts a request that much before its slot, so it leaves on the slot rather
    than a little after it, which would push every later slot back by as much. The
    quickest, so that no request leaves before its slot: a slower one leaves a little
    late, and the next slot then moves back (see ``pacing_note_answer``)."""

    def __init__(self, *, kept: int = ROUND_TRIPS_KEPT, most_s: float = LEAD_S) -> None:
        self._lags: deque[float] = deque(maxlen=kept)
        self._most_s = most_s

    def estimate_s(self) -> float:
        return min(min(self._lags, default=0.0), self._most_s)

    def note(self, *, handed_at: dt.datetime, left_at: dt.datetime | None) -> None:
        if left_at is not None:
            self._lags.append(max(0.0, (left_at - handed_at).total_seconds()))


def _locked_state() -> PacingState:
    """The pacing row, locked until the caller's transaction ends; created on first use."""
    state = PacingState.objects.select_for_update().filter(pk=PACING_PK).first()
    if state is None:
        PacingState.objects.bulk_create([PacingState(pk=PACING_PK)], ignore_conflicts=True)
        state = PacingState.objects.select_for_update().get(pk=PACING_PK)
    return state


def pacing_reserve(*, now: dt.datetime | None = None, lead_s: float = LEAD_S) -> Booking:
    """Book the slot for one request, or say how long to wait for one.

    A slot opening within ``lead_s`` is booked: the result's ``leave_at`` is when the
    request may leave (the caller waits until then), the next slot opens
    ``pacing_spacing_s`` later, and the request counts against the hourly cap. A slot
    further away books nothing: ``wait_s`` is how long to wait before asking again. An
    interval of 0 and a cap of 0 each turn their limit off.

    Call it inside the transaction that also marks the request as started, so a refusal to
    start rolls the booking back.
    """
    cap = max(0, int(settings.MIGRATION_HOURLY_CAP))
    with transaction.atomic():
        state = _locked_state()
        spacing = pacing_spacing_s(learnt_s=state.learnt_margin_s)
        now = now or timezone.now()
        slot = now
        if state.next_slot_at is not None and state.next_slot_at > slot:
            slot = state.next_slot_at
        if cap:
            # The window ends where a slot opening at ``slot`` would count.
            booked = list(
                PacingSlot.objects.filter(
                    booked_at__gt=slot - HOUR - dt.timedelta(seconds=MARGIN_S)
                )
                .order_by("-booked_at")
                .values_list("booked_at", flat=True)[:cap]
            )
            if len(booked) >= cap:
                # The oldest of the last ``cap`` slots must leave the hour first.
                slot = max(slot, booked[-1] + HOUR + dt.timedelta(seconds=MARGIN_S))
        ahead = (slot - now).total_seconds()
        if ahead > lead_s:
            return Booking(wait_s=ahead - lead_s)
        if spacing:
            state.next_slot_at = slot + dt.timedelta(seconds=spacing)
            state.save(update_fields=["next_slot_at", "updated_at"])
        if cap:
            PacingSlot.objects.create(booked_at=slot)
            PacingSlot.objects.filter(
                booked_at__lte=slot - HOUR - dt.timedelta(seconds=MARGIN_S)
            ).delete()
        return Booking(leave_at=slot)


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


def _counted_by(
    *, left_at: dt.datetime, answered_at: dt.datetime, state: PacingState
) -> dt.datetime:
    """The latest moment Masivo may be taken to have counted a request (see the module's
    docstring): when it left, unless its answer says it may have been counted later."""
    usual = state.round_trips or []
    idle = state.last_left_at is None or ((left_at - state.last_left_at).total_seconds() > IDLE_S)
    if idle or len(usual) < ROUND_TRIPS_KNOWN:
        return answered_at
    round_trip = (answered_at - left_at).total_seconds()
    median = statistics.median(usual)
    if round_trip > SLOW_FACTOR * median:
        return left_at + dt.timedelta(seconds=round_trip - median)
    return left_at


def _margin_note(*, rate_limited: bool, interval_s: float, now: dt.datetime) -> None:
    with transaction.atomic():
        state = _locked_state()
        learnt = margin_learn(
            learnt_s=state.learnt_margin_s, interval_s=interval_s, rate_limited=rate_limited
        )
        fields = ["learnt_margin_s", "learnt_margin_at", "updated_at"]
        if rate_limited:
            state.rate_limited_count += 1
            fields.append("rate_limited_count")
        if learnt == state.learnt_margin_s and not rate_limited:
            return
        state.learnt_margin_s, state.learnt_margin_at = learnt, now
        state.save(update_fields=fields)


def pacing_note_answer(
    *,
    retry_after_s: float | None,
    ratelimit: dict[str, int | float],
    now: dt.datetime | None = None,
    left_at: dt.datetime | None = None,
    status_code: int | None = None,
) -> dt.datetime | None:
    """Honour what an answer (in at ``now``) says for every worker; returns the time no
    request may leave before, if the answer's rate-limit headers set one.

    A 429 grows the learnt margin (and any other answer lets it decay: see
    ``margin_learn``). With ``left_at`` (when the request really left), the next slot also
    opens at least an interval (and the margin) after the moment Masivo may have counted
    the request: when it left, or later when its answer hints at a late count (see the
    module's docstring).
    """
    now = now or timezone.now()
    until = pacing_pause_from_answer(retry_after_s=retry_after_s, ratelimit=ratelimit, now=now)
    interval = max(0.0, float(settings.MIGRATION_MIN_INTERVAL_S))
    if status_code is not None and interval:
        _margin_note(rate_limited=status_code == RATE_LIMITED, interval_s=interval, now=now)
    spacing = pacing_spacing_s()
    if left_at is None or not spacing:
        if until is not None:
            pacing_defer(until=until)
        return until
    left_at = min(left_at, now)
    with transaction.atomic():
        state = _locked_state()
        spacing = pacing_spacing_s(learnt_s=state.learnt_margin_s)
        counted = _counted_by(left_at=left_at, answered_at=now, state=state)
        later = [counted + dt.timedelta(seconds=spacing)]
        if until is not None:
            later.append(until)
        if state.next_slot_at is not None:
            later.append(state.next_slot_at)
        state.next_slot_at = max(later)
        round_trip = round((now - left_at).total_seconds(), 6)
        state.round_trips = [*(state.round_trips or []), round_trip][-ROUND_TRIPS_KEPT:]
        if state.last_left_at is None or left_at > state.last_left_at:
            state.last_left_at = left_at
        state.save(update_fields=["next_slot_at", "last_left_at", "round_trips", "updated_at"])
    return until
