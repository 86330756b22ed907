"""Bearer tokens: when one expires, when to fetch the next, and the one every process
shares."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import time
import uuid
from collections.abc import Callable

from django.core.cache import BaseCache

logger = logging.getLogger("migrations_jobs.client")

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


class SharedToken:
    """One account's token, kept in a cache that every process (and host, with Redis)
    shares until its refresh time. One process fetches at a time, behind a cache lock
    (``cache.add``); the others wait briefly and read what it stored."""

    def __init__(self, *, cache: BaseCache, key: str, refresh_margin_s: float) -> None:
        self._cache = cache
        self._key = key
        self._lock_key = f"{key}:lock"
        self._refresh_margin_s = refresh_margin_s

    def get(self, *, fetch: Callable[[], str], reject: str | None = None) -> tuple[str, bool]:
        """A usable token and whether it was fetched now (with ``fetch``). ``reject`` is a
        token Masivo just refused: never handed out again."""
        cached = self._cached(reject=reject)
        if cached is not None:
            return cached, False
        owner = uuid.uuid4().hex
        wait_until = time.monotonic() + TOKEN_WAIT_S
        pause = TOKEN_WAIT_FIRST_SLEEP_S
        while True:
            if self._cache.add(self._lock_key, owner, timeout=TOKEN_LOCK_TIMEOUT_S):
                try:
                    # Someone may have refreshed between our read and our lock.
                    cached = self._cached(reject=reject)
                    if cached is not None:
                        return cached, False
                    return self._store(fetch()), True
                finally:
                    if self._cache.get(self._lock_key) == owner:
                        self._cache.delete(self._lock_key)
            time.sleep(pause)
            pause = min(pause * 2, TOKEN_WAIT_MAX_SLEEP_S)
            cached = self._cached(reject=reject)
            if cached is not None:
                return cached, False
            if time.monotonic() >= wait_until:
                logger.warning("Gave up waiting for another process to refresh the token.")
                return self._store(fetch()), True

    def forget(self, *, token: str) -> None:
        """Drop the shared token, but only if it is still the one Masivo refused."""
        entry = self._cache.get(self._key)
        if isinstance(entry, dict) and entry.get("token") == token:
            self._cache.delete(self._key)

    def clear(self) -> None:
        self._cache.delete(self._key)

    def entry(self) -> dict | None:
        """What the cache holds for the account: token, refresh_at, expires_at."""
        entry = self._cache.get(self._key)
        return entry if isinstance(entry, dict) else None

    def put(self, entry: dict, *, timeout_s: float) -> None:
        """Keep ``entry`` as the account's token (a test's stale or skewed token)."""
        self._cache.set(self._key, entry, timeout=timeout_s)

    def _cached(self, *, reject: str | None) -> str | None:
        entry = self._cache.get(self._key)
        if not isinstance(entry, dict):
            return None
        token = entry.get("token")
        if not isinstance(token, str) or not token or token == reject:
            return None
        if time.time() >= float(entry.get("refresh_at", 0)):
            return None
        return token

    def _store(self, token: str) -> str:
        now = time.time()
        expires_at = token_expiry(token=token)
        if expires_at is None:
            logger.warning("The token carries no readable exp claim: assuming one hour.")
            expires_at = now + DEFAULT_TOKEN_LIFETIME_S
        refresh_at = token_refresh_at(
            expires_at=expires_at, now=now, margin_s=self._refresh_margin_s
        )
        self._cache.set(
            self._key,
            {"token": token, "refresh_at": refresh_at, "expires_at": expires_at},
            timeout=max(1, math.ceil(refresh_at - now)),
        )
        logger.info(
            "Fetched a Masivo token: expires in %.0f s, refreshed in %.0f s",
            expires_at - now,
            refresh_at - now,
        )
        return token
