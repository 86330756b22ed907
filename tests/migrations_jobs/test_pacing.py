"""Pacing: one shared clock of request slots, kept in the database."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection

from migrations_jobs.models import PacingSlot, PacingState
from migrations_jobs.pacing import (
    MARGIN_S,
    pacing_defer,
    pacing_note_answer,
    pacing_pause_from_answer,
    pacing_reserve,
)

T0 = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


@pytest.fixture
def paced(settings):
    settings.MIGRATION_MIN_INTERVAL_S = 5.0
    settings.MIGRATION_HOURLY_CAP = 0
    return settings


def test_first_request_goes_at_once_and_the_next_waits_for_the_interval(db, paced):
    assert pacing_reserve(now=at(0)) == 0.0
    assert pacing_reserve(now=at(1)) == pytest.approx(4 + MARGIN_S)
    assert pacing_reserve(now=at(5)) == pytest.approx(MARGIN_S)
    assert pacing_reserve(now=at(5 + MARGIN_S)) == 0.0
    assert pacing_reserve(now=at(6)) == pytest.approx(4 + MARGIN_S * 2)


def test_a_refused_reservation_books_nothing(db, paced):
    pacing_reserve(now=at(0))
    before = PacingState.objects.get()

    assert pacing_reserve(now=at(2)) > 0

    assert PacingState.objects.get().next_slot_at == before.next_slot_at


def test_interval_zero_and_cap_zero_mean_no_pacing(db, settings):
    settings.MIGRATION_MIN_INTERVAL_S = 0
    settings.MIGRATION_HOURLY_CAP = 0

    assert [pacing_reserve(now=at(0)) for _ in range(50)] == [0.0] * 50
    assert not PacingSlot.objects.exists()


def test_hourly_cap_holds_requests_until_the_oldest_leaves_the_hour(db, settings):
    settings.MIGRATION_MIN_INTERVAL_S = 0
    settings.MIGRATION_HOURLY_CAP = 3

    assert [pacing_reserve(now=at(s)) for s in (0, 10, 20)] == [0.0, 0.0, 0.0]
    assert pacing_reserve(now=at(30)) == pytest.approx(3600 - 30 + MARGIN_S)
    assert pacing_reserve(now=at(3600 + MARGIN_S + 0.001)) == 0.0
    # The window slides: the second slot (at 10 s) is next to leave.
    assert pacing_reserve(now=at(3601)) == pytest.approx(3610 + MARGIN_S - 3601)
    assert PacingSlot.objects.count() == 3


def test_retry_after_pushes_the_next_slot_for_everyone(db, paced):
    pacing_reserve(now=at(0))

    until = pacing_note_answer(retry_after_s=30, ratelimit={}, now=at(1))

    assert until == at(31)
    assert pacing_reserve(now=at(10)) == pytest.approx(21)
    assert pacing_reserve(now=at(31)) == 0.0


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
    assert results == [0.0]
    # Another connection (another process, another host) sees the booking.
    assert pacing_reserve(now=at(1)) == pytest.approx(4 + MARGIN_S)


def test_concurrent_reservations_get_one_slot(transactional_db, paced):
    barrier = threading.Barrier(4)

    def reserve():
        barrier.wait(10)
        return pacing_reserve(now=at(0))

    started = [_in_thread(reserve) for _ in range(4)]
    for thread, _results, _errors in started:
        thread.join(30)

    assert not [error for _t, _r, errors in started for error in errors]
    waits = sorted(result for _t, results, _e in started for result in results)
    assert waits[0] == 0.0
    assert all(wait > 0 for wait in waits[1:])
    assert PacingState.objects.get().next_slot_at == at(5 + MARGIN_S)
