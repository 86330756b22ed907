"""What a sandbox endpoint answers, and the refusal that stops a migrate request early."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from migrations_jobs.sandbox.ratelimit import RateState


@dataclass(frozen=True)
class SandboxAnswer:
    """What a sandbox view answers: status, JSON body, headers, and a delay to sleep
    before answering (the request has already been processed and recorded)."""

    status_code: int
    payload: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


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
