"""Waiting for a page to reach a state, polled from Python: Playwright's
``wait_for_function`` compiles its predicate inside the page, which the console's
Content-Security-Policy (no ``eval``) rightly refuses."""

from __future__ import annotations

import time

POLL_S = 0.1


def wait_until(page, expression: str, *, arg=None, timeout: float = 30_000):
    """Evaluate ``expression`` (a JavaScript function of ``arg``) until it is truthy, or
    fail after ``timeout`` milliseconds; answers its value."""
    deadline = time.monotonic() + timeout / 1000
    while True:
        value = page.evaluate(expression, arg)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout / 1000:.0f} s: {expression}")
        page.wait_for_timeout(POLL_S * 1000)
