"""Pacing: one shared clock of request slots, kept in the database."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection

from migrations_jobs.models import PacingSlot, PacingState
from migrations_jobs.pacing import (
    DEPART_AHEAD_S,
    LEAD_S,
    LEARN_STEP_FRACTION,
    LEARNT_DECAY,
    LEARNT_FLOOR_S,
    LEARNT_MAX_FRACTION,
    MARGIN_S,
    ROUND_TRIPS_KEPT,
    ROUND_TRIPS_KNOWN,
    SPREAD_EXTRA_S,
    SPREAD_FACTOR,
    SPREAD_MAX_FRACTION,
    Booking,
    DepartureLag,
    margin_learn,
    pacing_defer,
    pacing_depart,
    pacing_margin_s,
    pacing_note_answer,
    pacing_pause_from_answer,
    pacing_reserve,
    round_trip_spread_s,
)

T0 = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


@pytest.fixture
def paced(settings, db):
    """One request every 5 s, with Masivo's round trips known and steady: the margin is
    the base one."""
    settings.MIGRATION_MIN_INTERVAL_S = 5.0
    settings.MIGRATION_HOURLY_CAP = 0
    PacingState.objects.update_or_create(pk=1, defaults={"round_trips": [0.04] * 10})
    return settings


def booked(seconds: float) -> Booking:
    return Booking(leave_at=at(seconds))


def waits(seconds: float) -> Booking:
    return Booking(wait_s=pytest.approx(seconds))


def test_first_request_goes_at_once_and_the_next_waits_for_the_interval(db, paced):
    assert pacing_reserve(now=at(0)) == booked(0)
    assert pacing_reserve(now=at(1)) == waits(4 + MARGIN_S - LEAD_S)
    assert pacing_reserve(now=at(5 + MARGIN_S)) == booked(5 + MARGIN_S)
    assert pacing_reserve(now=at(6)) == waits(4 + MARGIN_S * 2 - LEAD_S)


def test_a_slot_opening_within_the_lead_is_booked_to_leave_when_it_opens(db, paced):
    pacing_reserve(now=at(0))

    early = 5 + MARGIN_S - LEAD_S / 2
    booking = pacing_reserve(now=at(early))

    assert booking.is_booked
    # Booked ahead, but the request leaves on the slot, and the next slot follows it.
    assert booking.leave_at == at(5 + MARGIN_S)
    assert PacingState.objects.get().next_slot_at == at(10 + 2 * MARGIN_S)


def test_a_slot_that_opens_later_than_the_lead_books_nothing(db, paced):
    pacing_reserve(now=at(0))
    before = PacingState.objects.get()

    booking = pacing_reserve(now=at(5 + MARGIN_S - 2 * LEAD_S))

    assert not booking.is_booked
    assert booking.wait_s == pytest.approx(LEAD_S)
    assert PacingState.objects.get().next_slot_at == before.next_slot_at


def test_interval_zero_and_cap_zero_mean_no_pacing(db, settings):
    settings.MIGRATION_MIN_INTERVAL_S = 0
    settings.MIGRATION_HOURLY_CAP = 0

    assert [pacing_reserve(now=at(0)) for _ in range(50)] == [booked(0)] * 50
    assert not PacingSlot.objects.exists()


def test_hourly_cap_holds_requests_until_the_oldest_leaves_the_hour(db, settings):
    settings.MIGRATION_MIN_INTERVAL_S = 0
    settings.MIGRATION_HOURLY_CAP = 3

    assert [pacing_reserve(now=at(s)) for s in (0, 10, 20)] == [booked(0), booked(10), booked(20)]
    assert pacing_reserve(now=at(30)) == waits(3600 - 30 + MARGIN_S - LEAD_S)
    assert pacing_reserve(now=at(3600 + MARGIN_S + 0.001)) == booked(3600 + MARGIN_S + 0.001)
    # The window slides: the second slot (at 10 s) is next to leave.
    assert pacing_reserve(now=at(3601)) == waits(3610 + MARGIN_S - 3601 - LEAD_S)
    assert PacingSlot.objects.count() == 3


def test_retry_after_pushes_the_next_slot_for_everyone(db, paced):
    pacing_reserve(now=at(0))

    until = pacing_note_answer(retry_after_s=30, ratelimit={}, now=at(1))

    assert until == at(31)
    assert pacing_reserve(now=at(10)) == waits(21 - LEAD_S)
    assert pacing_reserve(now=at(31)) == booked(31)


def warm(at_s: float, round_trips: tuple[float, ...] = (0.04,) * 10) -> None:
    """Requests went and came back, the last leaving at ``at_s``: Masivo is warm, and its
    usual round trip is known."""
    PacingState.objects.update_or_create(
        pk=1, defaults={"last_left_at": at(at_s), "round_trips": list(round_trips)}
    )


def note(*, left: float, answered: float, status_code: int = 201) -> None:
    pacing_note_answer(
        retry_after_s=None,
        ratelimit={},
        now=at(answered),
        left_at=at(left),
        status_code=status_code,
    )


def next_slot() -> dt.datetime:
    return PacingState.objects.get().next_slot_at


def test_a_request_that_left_late_moves_the_next_slot_back(db, paced):
    warm(-5)
    pacing_reserve(now=at(0))

    # Its slot opened at 0 s; it left at 0.3 s (a new connection, a busy host).
    note(left=0.3, answered=0.34)

    assert next_slot() == at(5.3 + MARGIN_S)


def test_a_request_that_left_on_its_slot_keeps_the_next_slot(db, paced):
    warm(-5)
    pacing_reserve(now=at(0))

    note(left=0, answered=0.05)

    assert next_slot() == at(5 + MARGIN_S)


def test_a_slow_answer_does_not_move_the_next_slot(db, paced):
    warm(-5, round_trips=(0.03, 0.04, 0.04, 0.05, 0.06))
    pacing_reserve(now=at(0))

    # Masivo counts a request when it arrives: a slow answer is its work after counting.
    note(left=0, answered=3.0)

    assert next_slot() == at(5 + MARGIN_S)


def test_the_first_request_does_not_wait_for_its_answer(db, paced):
    pacing_reserve(now=at(0))

    note(left=0, answered=7.5)

    assert next_slot() == at(5 + MARGIN_S)


def test_a_request_that_left_late_holds_back_the_next_booking_before_its_answer(db, paced):
    pacing_reserve(now=at(0))
    # Its slot opened at 0 s, but its fence let it go at 0.4 s; no answer yet.
    assert pacing_depart(now=at(0.4 - DEPART_AHEAD_S)) == (at(0.4), 0)

    assert pacing_reserve(now=at(5 + MARGIN_S)) == waits(0.4 - LEAD_S)
    assert pacing_reserve(now=at(5.4 + MARGIN_S)) == booked(5.4 + MARGIN_S)


def test_no_request_leaves_within_the_spacing_of_the_last_one_whatever_its_booking(db, paced):
    assert pacing_depart(now=at(0)) == (at(DEPART_AHEAD_S), 0)

    # A request booked long ago, delayed on its way to the fence, is held back there.
    left, wait = pacing_depart(now=at(4))
    assert left is None
    assert wait == pytest.approx(1 + MARGIN_S)
    assert PacingState.objects.get().last_left_at == at(DEPART_AHEAD_S)
    leave = 5 + MARGIN_S + DEPART_AHEAD_S
    assert pacing_depart(now=at(5 + MARGIN_S)) == (at(leave), 0)
    assert PacingState.objects.get().last_left_at == at(leave)


def test_without_an_interval_requests_leave_at_once(db, settings):
    settings.MIGRATION_MIN_INTERVAL_S = 0

    assert [pacing_depart(now=at(0)) for _ in range(3)] == [(at(0), 0)] * 3


def test_round_trips_are_remembered_up_to_a_limit(db, paced):
    for n in range(ROUND_TRIPS_KEPT + 5):
        note(left=10 * n, answered=10 * n + 0.001 * n)

    state = PacingState.objects.get()
    assert len(state.round_trips) == ROUND_TRIPS_KEPT
    assert state.round_trips[-1] == pytest.approx(0.001 * (ROUND_TRIPS_KEPT + 4))
    assert state.last_left_at == at(10 * (ROUND_TRIPS_KEPT + 4))


def test_a_request_that_never_left_moves_nothing(db, paced):
    pacing_reserve(now=at(0))

    pacing_note_answer(retry_after_s=None, ratelimit={}, now=at(3), left_at=None)

    assert next_slot() == at(5 + MARGIN_S)
    assert PacingState.objects.get().last_left_at is None


@pytest.mark.parametrize(
    ("interval", "margin"), [(0, 0), (0.5, 0.01), (1, 0.02), (5, MARGIN_S), (60, MARGIN_S)]
)
def test_margin_is_a_fiftieth_of_the_interval_and_at_most_50_ms(interval, margin):
    assert pacing_margin_s(interval_s=interval) == pytest.approx(margin)


@pytest.mark.parametrize(
    ("interval", "spread", "margin"),
    [
        pytest.param(5, 0.08, 0.08, id="round trips spread wider than the base"),
        pytest.param(5, 0.01, MARGIN_S, id="narrower: the base"),
        pytest.param(0.2, 0.05, 0.2 * SPREAD_MAX_FRACTION, id="at most 6% of the interval"),
    ],
)
def test_margin_covers_the_spread_of_the_round_trips(interval, spread, margin):
    assert pacing_margin_s(interval_s=interval, spread_s=spread) == pytest.approx(margin)


def test_until_the_round_trips_are_known_the_margin_is_twice_the_base(db, settings):
    settings.MIGRATION_MIN_INTERVAL_S = 5.0
    settings.MIGRATION_HOURLY_CAP = 0

    assert pacing_reserve(now=at(0)) == booked(0)
    assert pacing_reserve(now=at(1)) == waits(4 + 2 * MARGIN_S - LEAD_S)
    assert pacing_margin_s(interval_s=0.2, spread_s=None) == pytest.approx(2 * 0.2 * 0.02)


def test_the_spread_counts_once_enough_round_trips_are_known():
    assert round_trip_spread_s([0.1] * (ROUND_TRIPS_KNOWN - 2) + [0.5]) is None
    assert round_trip_spread_s([0.1] * ROUND_TRIPS_KNOWN + [0.15]) == pytest.approx(
        SPREAD_FACTOR * 0.05 + SPREAD_EXTRA_S
    )


def test_a_429_grows_the_learnt_margin_and_other_answers_let_it_decay():
    grown = margin_learn(learnt_s=0.0, interval_s=1.0, rate_limited=True)
    assert grown == pytest.approx(LEARN_STEP_FRACTION)
    assert margin_learn(learnt_s=grown, interval_s=1.0, rate_limited=True) == pytest.approx(
        2 * LEARN_STEP_FRACTION
    )
    assert margin_learn(learnt_s=0.2, interval_s=1.0, rate_limited=True) == pytest.approx(
        LEARNT_MAX_FRACTION
    )
    decayed = margin_learn(learnt_s=grown, interval_s=1.0, rate_limited=False)
    assert decayed == pytest.approx(grown * LEARNT_DECAY)
    assert margin_learn(learnt_s=LEARNT_FLOOR_S, interval_s=1.0, rate_limited=False) == 0


def test_a_429_spaces_every_later_request_further_until_it_is_forgotten(db, paced):
    pacing_reserve(now=at(0))

    pacing_note_answer(retry_after_s=1, ratelimit={}, now=at(0.1), left_at=at(0), status_code=429)

    state = PacingState.objects.get()
    assert state.rate_limited_count == 1
    assert state.learnt_margin_s == pytest.approx(5 * LEARN_STEP_FRACTION)
    # Retry-After (1 s) is shorter than the interval: the interval and the learnt margin rule.
    assert next_slot() == at(5 + MARGIN_S + 5 * LEARN_STEP_FRACTION)
    for n in range(1, 300):
        note(left=10 * n, answered=10 * n + 0.05)
    assert PacingState.objects.get().learnt_margin_s == 0


def test_defer_never_brings_the_next_slot_closer(db, paced):
    pacing_defer(until=at(60))
    pacing_defer(until=at(20))

    assert PacingState.objects.get().next_slot_at == at(60)


@pytest.mark.parametrize(
    ("ratelimit", "expected"),
    [
        ({"limit": 250, "remaining": 0, "reset": 40}, at(40)),
        ({"limit": 250, "remaining": 0, "reset": at(90).timestamp()}, at(90)),
        ({"limit": 250, "remaining": 3, "reset": 40}, None),
        ({"limit": 250}, None),
        ({}, None),
    ],
)
def test_exhausted_rate_limit_pauses_until_its_reset(ratelimit, expected):
    assert pacing_pause_from_answer(retry_after_s=None, ratelimit=ratelimit, now=at(0)) == expected


def test_the_longer_of_retry_after_and_reset_wins():
    until = pacing_pause_from_answer(
        retry_after_s=5, ratelimit={"remaining": 0, "reset": 12}, now=at(0)
    )
    assert until == at(12)


def _in_thread(function):
    """Run ``function`` in a thread, on that thread's own database connection."""
    results: list = []
    errors: list[BaseException] = []

    def run():
        try:
            results.append(function())
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, results, errors


def test_pacing_is_shared_between_connections(transactional_db, paced):
    thread, results, errors = _in_thread(lambda: pacing_reserve(now=at(0)))
    thread.join(30)

    assert not errors
    assert results == [booked(0)]
    # Another connection (another process, another host) sees the booking.
    assert pacing_reserve(now=at(1)) == waits(4 + MARGIN_S - LEAD_S)


def test_concurrent_reservations_get_one_slot(transactional_db, paced):
    barrier = threading.Barrier(4)

    def reserve():
        barrier.wait(10)
        return pacing_reserve(now=at(0))

    started = [_in_thread(reserve) for _ in range(4)]
    for thread, _results, _errors in started:
        thread.join(30)

    assert not [error for _t, _r, errors in started for error in errors]
    bookings = [result for _t, results, _e in started for result in results]
    assert [booking for booking in bookings if booking.is_booked] == [booked(0)]
    assert all(booking.wait_s > 0 for booking in bookings if not booking.is_booked)
    assert PacingState.objects.get().next_slot_at == at(5 + MARGIN_S)


def test_departure_lag_is_the_quickest_recent_one_and_at_most_the_lead():
    lag = DepartureLag(kept=3)
    assert lag.estimate_s() == 0.0

    for seconds in (0.004, 0.002, 0.003):
        lag.note(handed_at=at(0), left_at=at(seconds))
    lag.note(handed_at=at(0), left_at=None)  # never left: says nothing
    assert lag.estimate_s() == pytest.approx(0.002)

    lag.note(handed_at=at(0), left_at=at(0.005))  # the 0.004 s one is forgotten
    lag.note(handed_at=at(0), left_at=at(0.006))  # and the 0.002 s one
    assert lag.estimate_s() == pytest.approx(0.003)

    for _ in range(3):
        lag.note(handed_at=at(0), left_at=at(1))
    assert lag.estimate_s() == LEAD_S
