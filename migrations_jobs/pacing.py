"""The pace of requests to Masivo, shared by every worker process and host.

Masivo allows one migrate request every ``MIGRATION_MIN_INTERVAL_S`` seconds and
``MIGRATION_HOURLY_CAP`` requests an hour (CONTRACT.md), and counts a request when it
arrives. The console paces itself to those limits instead of discovering them through
429s. The state lives in the database, so every worker on every host sees the same clock
of slots:

- ``PacingState`` (one row, locked for every decision) holds ``next_slot_at``: no request
  may leave before it. A worker books a slot a few milliseconds before it opens
  (``LEAD_S``), commits, and sends when it opens, so the booking's own transaction does
  not delay the request. The next slot opens the interval and the margin after it.
- Requests are spaced by when they really leave. The fence, immediately before a body
  goes, asks ``pacing_depart``: under the same row lock, a request leaves only an
  interval and the margin after the last one left (it waits otherwise), and becomes the
  last to have left. A request that left late pushes the next one back at once, even
  when answers take longer than the interval and whatever delayed it between its booking
  and its leaving; a booking opens no slot earlier than that either. Its answer brings
  the moment it really left (its headers written), which keeps the clock after the
  answer.
- The margin absorbs what the console cannot see: the difference between two requests'
  trips to Masivo's limiter. It is the largest of a small base (``MARGIN_FRACTION`` of
  the interval, at most ``MARGIN_S``) and the spread of the recent round trips (a trip
  out varies no more than a round trip), at most ``SPREAD_MAX_FRACTION`` of the
  interval, plus what 429s taught: a 429 grows the learnt part, every other answer lets
  it decay (see ``margin_learn``). Until enough round trips are known, twice the base
  stands for their spread. A server whose clock or counting differs is learnt, not
  fought.
- A ``Retry-After`` or an exhausted ``X-RateLimit-Remaining`` pushes the slot further.
- ``PacingSlot`` rows are the slots booked in the last hour, for the hourly cap (a sliding
  window: a slot frees exactly one hour after it opened).

Hosts are assumed to keep their clocks in sync (NTP); the database serialises decisions.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from migrations_jobs.models import PACING_PK, PacingSlot, PacingState

HOUR = dt.timedelta(hours=1)
# X-RateLimit-Reset above this is an epoch time in seconds; below it, seconds from now.
EPOCH_THRESHOLD_S = 1_000_000_000
# The base margin: a fraction of the interval, at most MARGIN_S. Jitter does not grow with
# the interval, and every request pays the margin, so a fixed one would cost a short
# interval dearly (0.05 s is a quarter of a 0.2 s interval, a hundredth of 5 s).
MARGIN_S = 0.05
MARGIN_FRACTION = 0.02
# The round trips' spread counts once this many are known, and at most this fraction of
# the interval (a server whose work varies a lot must not slow every request down).
ROUND_TRIPS_KEPT = 20
ROUND_TRIPS_KNOWN = 5
SPREAD_MAX_FRACTION = 0.06
# Added to the spread: the gap between the fence's mark and the body's leaving.
SPREAD_EXTRA_S = 0.002
# The range of a few round trips understates the range of all of them (20 draws of a
# uniform delay span about 90% of it): the spread counts a quarter more than it saw.
SPREAD_FACTOR = 1.25
# A slot is booked this long before it opens: time for the booking to commit, so the
# request leaves on the slot and not a commit later.
LEAD_S = 0.03
# The fence books the moment its request leaves this far ahead (time for its commit), and
# lets the request go at that moment.
DEPART_AHEAD_S = 0.01
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


def round_trip_spread_s(round_trips: list[float] | None) -> float | None:
    """How much the recent round trips differ (largest minus smallest, by
    ``SPREAD_FACTOR``), once ``ROUND_TRIPS_KNOWN`` are known; None before."""
    trips = round_trips or []
    if len(trips) < ROUND_TRIPS_KNOWN:
        return None
    return SPREAD_FACTOR * (max(trips) - min(trips)) + SPREAD_EXTRA_S


def pacing_margin_s(
    *, interval_s: float, learnt_s: float = 0.0, spread_s: float | None = 0.0
) -> float:
    """How much later than ``interval_s`` after a request the next slot opens: the base
    margin or the round trips' spread (``spread_s``, at most ``SPREAD_MAX_FRACTION`` of the
    interval), whichever is larger, plus what Masivo's 429s taught (``learnt_s``), at most
    ``LEARNT_MAX_FRACTION`` of the interval in all. While the spread is not known yet
    (``spread_s`` None), twice the base stands for it."""
    interval = max(0.0, interval_s)
    base = min(MARGIN_S, MARGIN_FRACTION * interval)
    spread = 2 * base if spread_s is None else max(0.0, spread_s)
    seen = min(spread, SPREAD_MAX_FRACTION * interval)
    floor = max(base, seen)
    return min(floor + max(0.0, learnt_s), max(floor, LEARNT_MAX_FRACTION * interval))


def pacing_spacing_s(*, state: PacingState | None = None) -> float:
    """Seconds from one request leaving to the next slot: the interval and its margin
    (learnt from ``state``); 0 when the interval is off."""
    interval = max(0.0, float(settings.MIGRATION_MIN_INTERVAL_S))
    if not interval:
        return 0.0
    margin = pacing_margin_s(
        interval_s=interval,
        learnt_s=state.learnt_margin_s if state is not None else 0.0,
        spread_s=round_trip_spread_s(state.round_trips if state is not None else None),
    )
    return interval + margin


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
        spacing = pacing_spacing_s(state=state)
        now = now or timezone.now()
        slot = now
        if state.next_slot_at is not None and state.next_slot_at > slot:
            slot = state.next_slot_at
        if spacing and state.last_left_at is not None:
            slot = max(slot, state.last_left_at + dt.timedelta(seconds=spacing))
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


def pacing_depart(*, now: dt.datetime | None = None) -> tuple[dt.datetime | None, float]:
    """Book the moment a request leaves, or say how long it must wait first.

    Called by the fence, inside its transaction, immediately before a request leaves:
    ``(leave_at, 0.0)`` when it may leave at ``leave_at`` (``DEPART_AHEAD_S`` from now, or
    a little later for the pace), and becomes the last request to have left;
    ``(None, seconds)`` to wait first (nothing booked). Whatever happened between booking
    a slot and this moment (a worker descheduled, a slow database), no two requests leave
    closer than the spacing; the caller lets the request go at ``leave_at``, after its
    commit, so what the commit costs does not move the request.
    """
    now = now or timezone.now()
    if not pacing_spacing_s():
        return now, 0.0
    with transaction.atomic():
        state = _locked_state()
        spacing = pacing_spacing_s(state=state)
        leave_at = now + dt.timedelta(seconds=DEPART_AHEAD_S)
        if state.last_left_at is not None:
            earliest = state.last_left_at + dt.timedelta(seconds=spacing)
            if earliest > leave_at:
                return None, (earliest - leave_at).total_seconds()
        state.last_left_at = leave_at
        state.save(update_fields=["last_left_at", "updated_at"])
    return leave_at, 0.0


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
    opens at least an interval and the margin after it, and an accepted request's round
    trip joins the ones the margin's spread is read from.
    """
    now = now or timezone.now()
    until = pacing_pause_from_answer(retry_after_s=retry_after_s, ratelimit=ratelimit, now=now)
    interval = max(0.0, float(settings.MIGRATION_MIN_INTERVAL_S))
    if status_code is not None and interval:
        _margin_note(rate_limited=status_code == RATE_LIMITED, interval_s=interval, now=now)
    if left_at is None or not interval:
        if until is not None:
            pacing_defer(until=until)
        return until
    left_at = min(left_at, now)
    with transaction.atomic():
        state = _locked_state()
        later = [left_at + dt.timedelta(seconds=pacing_spacing_s(state=state))]
        if until is not None:
            later.append(until)
        if state.next_slot_at is not None:
            later.append(state.next_slot_at)
        state.next_slot_at = max(later)
        if status_code is not None and 200 <= status_code < 300:
            round_trip = round((now - left_at).total_seconds(), 6)
            state.round_trips = [*(state.round_trips or []), round_trip][-ROUND_TRIPS_KEPT:]
        if state.last_left_at is None or left_at > state.last_left_at:
            state.last_left_at = left_at
        state.save(update_fields=["next_slot_at", "last_left_at", "round_trips", "updated_at"])
    return until
