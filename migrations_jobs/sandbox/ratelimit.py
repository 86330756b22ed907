"""The migrate rate limit: one request per interval and a cap per hour window, decided
under a row lock so every process and thread of the sandbox shares it. Like Masivo's, it is
one budget for customers/migrate and the history's two endpoints (transactions, events):
a request to any of them counts against the same window.

Which moment of a request counts is the configuration's clock (``RateClock``):

- ``arrival``: when the request reached the server (stamped first thing by
  ``SandboxArrivalMiddleware``), later by any drawn network jitter. Requests are decided
  one at a time under the lock, but not necessarily in the order they arrived: one that
  arrived first may still be reading its body, or sleeping its jitter, when a later one is
  decided. So a request is not compared with the last one counted but with every request
  counted recently (``recent_arrivals``), on either side: it is refused when its arrival
  is within the interval of any of them. For a client that keeps the interval, every
  verdict then depends on arrival times alone, not on the order of the decisions. (Of two
  requests that arrived within an interval of each other, the one decided first is
  counted and the other refused.) The last ``ARRIVALS_KEPT`` counted arrivals are kept: a
  request decided after that many later ones were counted is compared with those only.
- ``processing``: when the view began to handle it, compared with the last request
  counted (refused unless at least an interval later), as the sandbox always did.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from migrations_jobs.sandbox.answers import RateState, Refusal
from migrations_jobs.sandbox.models import (
    SINGLETON_PK,
    RateClock,
    SandboxConfig,
    SandboxRateWindow,
    SandboxRequest,
)

HOUR = dt.timedelta(hours=1)
# X-RateLimit-Limit when neither an hourly cap nor an interval limits the sandbox.
UNLIMITED_HOURLY = 1_000_000
# Counted arrivals kept for the arrival clock's comparison.
ARRIVALS_KEPT = 32
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MICROSECOND = dt.timedelta(microseconds=1)

ERR_RATE_LIMITED = "Too many requests"
DETAIL_RATE_INTERVAL = "At most one migration request every %(interval)g seconds"
DETAIL_RATE_HOURLY = "At most %(cap)d migration requests an hour"


@dataclass(frozen=True)
class Arrival:
    """When the limiter counts a request, and the network jitter drawn for it."""

    counted_at: dt.datetime
    jitter_s: float = 0.0


def request_arrival(
    *,
    config: SandboxConfig,
    arrived_at: dt.datetime | None,
    processed_at: dt.datetime,
    draw: Callable[[float, float], float] = random.uniform,
) -> Arrival:
    """The moment the limiter counts for a request that reached the server at
    ``arrived_at`` (None: not stamped) and whose view began at ``processed_at``.

    The clock picks the moment (``processed_at`` when no arrival was stamped); then a
    jitter drawn uniformly from [0, ``jitter_s``] is added, as if the request had spent
    that much longer on the network. The caller waits until ``counted_at`` before the
    request is decided, as a delayed packet would make it, but the moment counted is this
    one, whatever the scheduling of that wait."""
    base = processed_at
    if config.rate_clock == RateClock.ARRIVAL and arrived_at is not None:
        base = arrived_at
    jitter = 0.0
    if config.jitter_s > 0:
        jitter = min(max(draw(0.0, config.jitter_s), 0.0), config.jitter_s)
    return Arrival(counted_at=base + dt.timedelta(seconds=jitter), jitter_s=jitter)


def arrival_us(moment: dt.datetime) -> int:
    """A moment as whole microseconds since the epoch: exact, so an arrival exactly an
    interval after another is not refused by a float's rounding."""
    return (moment - EPOCH) // MICROSECOND


def arrival_next_free(*, arrival_us: int, counted_us: Sequence[int], interval_us: int) -> int:
    """The earliest moment from ``arrival_us`` on that is at least ``interval_us`` away
    from every counted arrival (``counted_us``, ascending): ``arrival_us`` itself when the
    request may be counted, a later moment (for Retry-After) when it is too close to one of
    them, on either side."""
    free = arrival_us
    start = bisect.bisect_right(counted_us, arrival_us - interval_us)
    for counted in counted_us[start:]:
        if counted >= free + interval_us:
            break
        if counted - interval_us < free < counted + interval_us:
            free = counted + interval_us
    return free


def hourly_limit(config: SandboxConfig) -> int:
    """X-RateLimit-Limit: the hourly cap, else what the interval allows in an hour."""
    if config.hourly_cap:
        return config.hourly_cap
    if config.rate_interval_s > 0:
        return math.floor(3600 / config.rate_interval_s)
    return UNLIMITED_HOURLY


def rate_state(*, config: SandboxConfig, window: SandboxRateWindow, now: dt.datetime) -> RateState:
    """The headers' values: requests left in the hour window, seconds until it ends."""
    limit = hourly_limit(config)
    if window.window_started_at is None or now >= window.window_started_at + HOUR:
        return RateState(limit=limit, remaining=limit, reset_s=int(HOUR.total_seconds()))
    reset = math.ceil((window.window_started_at + HOUR - now).total_seconds())
    return RateState(limit=limit, remaining=max(0, limit - window.window_count), reset_s=reset)


def rate_window_snapshot(*, config: SandboxConfig) -> RateState:
    window = SandboxRateWindow.objects.filter(pk=SINGLETON_PK).first() or SandboxRateWindow()
    return rate_state(config=config, window=window, now=timezone.now())


def _interval_wait_s(
    *, config: SandboxConfig, window: SandboxRateWindow, now: dt.datetime
) -> float:
    """How long after ``now`` a request may come under the interval (0: it may be counted)."""
    if config.rate_interval_s <= 0:
        return 0.0
    if config.rate_clock == RateClock.ARRIVAL:
        arrival = arrival_us(now)
        free = arrival_next_free(
            arrival_us=arrival,
            counted_us=window.recent_arrivals or [],
            interval_us=round(config.rate_interval_s * 1_000_000),
        )
        return (free - arrival) / 1_000_000
    interval = dt.timedelta(seconds=config.rate_interval_s)
    if window.last_request_at is not None and now < window.last_request_at + interval:
        return (window.last_request_at + interval - now).total_seconds()
    return 0.0


def _window_count(*, window: SandboxRateWindow, now: dt.datetime) -> None:
    """Note a counted request that arrived at ``now``."""
    window.last_request_at = max(filter(None, (window.last_request_at, now)))
    arrivals = window.recent_arrivals or []
    bisect.insort(arrivals, arrival_us(now))
    window.recent_arrivals = arrivals[-ARRIVALS_KEPT:]
    window.window_count += 1


def _rate_refusal(*, details: str, wait_s: float) -> Refusal:
    return Refusal(
        status_code=429,
        reason=SandboxRequest.Reason.RATE_LIMITED,
        error=ERR_RATE_LIMITED,
        details=details,
        retry_after_s=max(1, math.ceil(wait_s)),
    )


def rate_window_take(*, config: SandboxConfig, now: dt.datetime | None = None) -> RateState:
    """Count a request that arrived at ``now`` (default: now) against the limits, or refuse
    it with 429 and Retry-After. What "arrived" means is the caller's: the configuration's
    clock (see ``request_arrival``); the interval's rule depends on it too (see the
    module's docstring).

    The window row is locked for the decision, so every process and thread sees the
    requests of the others."""
    with transaction.atomic():
        window, _created = SandboxRateWindow.objects.select_for_update().get_or_create(
            pk=SINGLETON_PK
        )
        now = now or timezone.now()
        if window.window_started_at is None or now >= window.window_started_at + HOUR:
            window.window_started_at = now
            window.window_count = 0
        refusal: Refusal | None = None
        wait = _interval_wait_s(config=config, window=window, now=now)
        if wait > 0:
            details = DETAIL_RATE_INTERVAL % {"interval": config.rate_interval_s}
            refusal = _rate_refusal(details=details, wait_s=wait)
        elif config.hourly_cap and window.window_count >= config.hourly_cap:
            wait = (window.window_started_at + HOUR - now).total_seconds()
            details = DETAIL_RATE_HOURLY % {"cap": config.hourly_cap}
            refusal = _rate_refusal(details=details, wait_s=wait)
        else:
            _window_count(window=window, now=now)
            window.save()
        state = rate_state(config=config, window=window, now=now)
    if refusal is not None:
        refusal.rate = state
        raise refusal
    return state
