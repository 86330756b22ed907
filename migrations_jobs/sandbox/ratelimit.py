"""The migrate rate limit: one request per interval and a cap per hour window, decided
under a row lock so every process and thread of the sandbox shares it."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from migrations_jobs.sandbox.answers import Refusal
from migrations_jobs.sandbox.models import (
    SINGLETON_PK,
    SandboxConfig,
    SandboxRateWindow,
    SandboxRequest,
)

HOUR = dt.timedelta(hours=1)
# X-RateLimit-Limit when neither an hourly cap nor an interval limits the sandbox.
UNLIMITED_HOURLY = 1_000_000

ERR_RATE_LIMITED = "Too many requests"
DETAIL_RATE_INTERVAL = "At most one migration request every %(interval)g seconds"
DETAIL_RATE_HOURLY = "At most %(cap)d migration requests an hour"


@dataclass
class RateState:
    limit: int
    remaining: int
    reset_s: int

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_s),
        }


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


def rate_window_take(*, config: SandboxConfig, now: dt.datetime | None = None) -> RateState:
    """Count a request that arrived at ``now`` (default: now) against the limits, or refuse
    it with 429 and Retry-After.

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
        interval = dt.timedelta(seconds=config.rate_interval_s)
        refusal: Refusal | None = None
        if (
            config.rate_interval_s > 0
            and window.last_request_at is not None
            and now < window.last_request_at + interval
        ):
            wait = (window.last_request_at + interval - now).total_seconds()
            refusal = Refusal(
                status_code=429,
                reason=SandboxRequest.Reason.RATE_LIMITED,
                error=ERR_RATE_LIMITED,
                details=DETAIL_RATE_INTERVAL % {"interval": config.rate_interval_s},
                retry_after_s=max(1, math.ceil(wait)),
            )
        elif config.hourly_cap and window.window_count >= config.hourly_cap:
            wait = (window.window_started_at + HOUR - now).total_seconds()
            refusal = Refusal(
                status_code=429,
                reason=SandboxRequest.Reason.RATE_LIMITED,
                error=ERR_RATE_LIMITED,
                details=DETAIL_RATE_HOURLY % {"cap": config.hourly_cap},
                retry_after_s=max(1, math.ceil(wait)),
            )
        else:
            window.last_request_at = now
            window.window_count += 1
            window.save()
        state = rate_state(config=config, window=window, now=now)
    if refusal is not None:
        refusal.rate = state
        raise refusal
    return state
