"""Bearer tokens: when one expires and when to fetch the next."""

from __future__ import annotations

import base64
import binascii
import json
import math

CACHE_KEY_PREFIX = "masivo:token:"
# How long the refresh lock lives if its holder dies, and how long others wait for it.
TOKEN_LOCK_TIMEOUT_S = 10
TOKEN_WAIT_S = 10.0
TOKEN_WAIT_FIRST_SLEEP_S = 0.02
TOKEN_WAIT_MAX_SLEEP_S = 0.25
# A token whose lifetime is shorter than the refresh margin is refreshed at this fraction.
SHORT_TOKEN_REFRESH_FRACTION = 0.8
# Kept at least this long, so a token with a skewed ``exp`` does not cause a fetch per call.
MIN_TOKEN_CACHE_S = 1.0
# CONTRACT.md: "the token lives one hour"; used when a token carries no readable ``exp``.
DEFAULT_TOKEN_LIFETIME_S = 3600.0


def token_expiry(*, token: str) -> float | None:
    """The ``exp`` claim (epoch seconds) of a JWT, read without checking its signature."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    segment = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(segment))
    except (binascii.Error, ValueError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, int | float) or not math.isfinite(exp):
        return None
    return float(exp)


def token_refresh_at(*, expires_at: float, now: float, margin_s: float) -> float:
    """When a token expiring at ``expires_at`` should be replaced: ``margin_s`` before
    expiry, or at 80% of its lifetime when that is shorter than the margin."""
    lifetime = expires_at - now
    if lifetime > margin_s:
        return expires_at - margin_s
    return now + max(lifetime * SHORT_TOKEN_REFRESH_FRACTION, MIN_TOKEN_CACHE_S)
