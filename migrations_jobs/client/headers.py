"""Reading Masivo's rate-limit headers, and the backoff between attempts."""

from __future__ import annotations

import math
import random
import time
from email.utils import parsedate_to_datetime
from typing import Protocol

import httpx

ERR_BACKOFF_ATTEMPT = "attempt must be 1 or more."
ERR_BACKOFF_NEGATIVE = "base and cap must not be negative."


class _Uniform(Protocol):
    def uniform(self, a: float, b: float, /) -> float: ...


def backoff_delay(*, attempt: int, base: float, cap: float, rng: _Uniform = random) -> float:
    """Capped exponential backoff with full jitter: uniform in
    ``[0, min(cap, base * 2 ** (attempt - 1))]``, ``attempt`` counting from 1."""
    if attempt < 1:
        raise ValueError(ERR_BACKOFF_ATTEMPT)
    if base < 0 or cap < 0:
        raise ValueError(ERR_BACKOFF_NEGATIVE)
    # 2 ** 1024 overflows a float; long before that the cap applies.
    ceiling = min(cap, base * 2.0 ** min(attempt - 1, 1000))
    return rng.uniform(0.0, ceiling)


def retry_after_seconds(*, value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delay-seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if moment.tzinfo is None:
            return None
        now = time.time() if now is None else now
        return max(0.0, moment.timestamp() - now)
    return max(0.0, seconds) if math.isfinite(seconds) else None


def ratelimit_headers(*, headers: httpx.Headers) -> dict[str, int | float]:
    """``X-RateLimit-Limit/Remaining/Reset`` as ``{"limit": ..., "remaining": ...,
    "reset": ...}``, leaving out absent or unreadable ones."""
    found: dict[str, int | float] = {}
    for key in ("limit", "remaining", "reset"):
        raw = headers.get(f"x-ratelimit-{key}")
        if raw is None:
            continue
        try:
            found[key] = int(raw)
        except ValueError:
            try:
                number = float(raw)
            except ValueError:
                continue
            if math.isfinite(number):
                found[key] = number
    return found
