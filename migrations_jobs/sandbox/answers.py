"""What a sandbox endpoint answers, the rate-limit figures its headers carry, and the
refusal that stops a migrate request early.

The rate limiter (``ratelimit``) builds ``RateState`` and raises ``Refusal``; both live
here so that the limiter imports this module and this module imports nothing of the
sandbox's.
"""

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SandboxAnswer:
    """What a sandbox view answers: status, JSON body, headers, and a delay to sleep
    before answering (the request has already been processed and recorded)."""

    status_code: int
    payload: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class RateState:
    """The hour window as the ``X-RateLimit-*`` headers tell it."""

    limit: int
    remaining: int
    reset_s: int

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_s),
        }


class Refusal(Exception):
    """Ends a migrate request with an error answer in Masivo's shape."""

    def __init__(
        self,
        *,
        status_code: int,
        reason: str,
        error: str,
        details: str,
        retry_after_s: int | None = None,
    ) -> None:
        super().__init__(details)
        self.status_code = status_code
        self.reason = reason
        self.error = error
        self.details = details
        self.retry_after_s = retry_after_s
        # The rate limiter's state when it was the one refusing.
        self.rate: RateState | None = None
