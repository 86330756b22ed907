"""What keeps an attacker's guesses and injected markup at bay: a Content-Security-Policy on
every answer, and a limit on failed sign-ins (the admin's login page) and on wrong API
tokens, counted per address in the cache.

- **The policy** (``CONSOLE_CONTENT_SECURITY_POLICY``) allows scripts from the console's
  own files only: no inline script, no ``eval``, nothing from elsewhere. Django's admin,
  django-import-export's pages as the console renders them and its own scripts all load
  from static files.
- **Failed sign-ins** are counted per address and account, and per address alone: after
  ``CONSOLE_SIGNIN_FAILURES`` failures for one account (five times that from one address
  for any account) in ``CONSOLE_SIGNIN_LOCKOUT_S`` seconds, the next attempts are refused
  without checking the password until the window ends. Counting per address keeps a
  stranger from locking an operator out from elsewhere. A sign-in that succeeds clears
  the account's count.
- **Wrong API tokens** are counted per address: past ``CONSOLE_TOKEN_FAILURES`` in the
  window, the API answers 429 with ``Retry-After`` instead of looking the token up.

The address is the request's ``REMOTE_ADDR``, or, behind a proxy the settings trust
(``DJANGO_BEHIND_PROXY``), the last address of ``X-Forwarded-For`` (the one that proxy
added).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication, get_authorization_header

logger = logging.getLogger("console.security")

ERR_SIGNIN_LOCKED = _(
    "Too many failed sign-ins from this address. Try again in %(minutes)s minute(s)."
)
# An address may fail this many times more than one account's limit, for any accounts.
ADDRESS_FACTOR = 5


class ContentSecurityPolicyMiddleware:
    """Adds ``Content-Security-Policy`` (``CONSOLE_CONTENT_SECURITY_POLICY``) to every
    answer that has none of its own."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        response = self.get_response(request)
        policy = settings.CONSOLE_CONTENT_SECURITY_POLICY
        if policy:
            response.headers.setdefault("Content-Security-Policy", policy)
        return response


def client_address(request) -> str:
    """Who is asking: ``REMOTE_ADDR``, or the address a trusted proxy put last in
    ``X-Forwarded-For``."""
    meta = request.META
    if settings.BEHIND_PROXY:
        forwarded = [a.strip() for a in meta.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        if forwarded and forwarded[-1]:
            return forwarded[-1][:64]
    return str(meta.get("REMOTE_ADDR", ""))[:64]


class FailureCount:
    """Failures under one name in the cache, forgotten ``CONSOLE_SIGNIN_LOCKOUT_S`` seconds
    after the first of them."""

    def __init__(self, *parts: str, limit: int) -> None:
        digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
        self.key = f"console:failures:{digest}"
        self.limit = limit

    @property
    def window_s(self) -> int:
        return int(settings.CONSOLE_SIGNIN_LOCKOUT_S)

    def is_exceeded(self) -> bool:
        found = cache.get(self.key)
        return bool(found) and found[0] >= self.limit

    def wait_s(self) -> int:
        """Seconds until the count is forgotten."""
        found = cache.get(self.key)
        return 0 if not found else max(1, math.ceil(found[1] + self.window_s - time.time()))

    def add(self) -> None:
        count, since = cache.get(self.key) or (0, time.time())
        remaining = max(1, math.ceil(since + self.window_s - time.time()))
        cache.set(self.key, (count + 1, since), timeout=remaining)

    def clear(self) -> None:
        cache.delete(self.key)


def _signin_counts(request, username: str) -> tuple[FailureCount, FailureCount]:
    address = client_address(request)
    limit = int(settings.CONSOLE_SIGNIN_FAILURES)
    return (
        FailureCount("signin", address, username.strip().lower(), limit=limit),
        FailureCount("signin", address, limit=ADDRESS_FACTOR * limit),
    )


class ConsoleLoginForm(AdminAuthenticationForm):
    """The admin's sign-in form, with failed attempts limited (see the module)."""

    def clean(self):
        account, address = _signin_counts(self.request, self.cleaned_data.get("username") or "")
        locked = next((count for count in (account, address) if count.is_exceeded()), None)
        if locked is not None:
            minutes = max(1, math.ceil(locked.wait_s() / 60))
            logger.warning(
                "Sign-in refused: too many failures from %s", client_address(self.request)
            )
            raise ValidationError(ERR_SIGNIN_LOCKED, code="locked", params={"minutes": minutes})
        try:
            cleaned = super().clean()
        except ValidationError:
            account.add()
            address.add()
            raise
        account.clear()
        return cleaned


class ThrottledTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, refusing an address that sent too many wrong tokens."""

    def authenticate(self, request):
        presented = get_authorization_header(request).split()
        if not presented or presented[0].lower() != self.keyword.lower().encode():
            return None
        failures = FailureCount(
            "token", client_address(request), limit=int(settings.CONSOLE_TOKEN_FAILURES)
        )
        if failures.is_exceeded():
            raise exceptions.Throttled(wait=failures.wait_s())
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            failures.add()
            raise
