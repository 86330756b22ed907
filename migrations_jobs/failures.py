"""A failed chunk in words: what Masivo refused (or what kept the request from an answer),
with Masivo's own message, and what the operator can do about it.

Whether a retry can help is not decided here: ``services.outcomes.answer_action`` decides
it when the answer comes, and the chunk records it (``JobChunk.is_permanent``). This
module only words that decision and the recorded answer (``selectors.ChunkFailure``), for
the job page, its live updates and the CSV of failed customers. The raw answer stays
available beside these words (the attempt's response excerpt), never instead of them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from migrations_jobs.models import ChunkAttempt
from migrations_jobs.selectors import ChunkFailure

Outcome = ChunkAttempt.Outcome

# How much of Masivo's message the words quote; the whole excerpt stays on the attempt.
MESSAGE_CHARS = 240
# Refusals of the request's content: a customer of it is not acceptable to Masivo.
CONTENT_CODES = frozenset({400, 409, 413, 422})
ACCESS_CODES = frozenset({401, 403})
ADDRESS_CODES = frozenset({404})


@dataclass(frozen=True)
class FailureText:
    """What happened (``what``), what to do (``advice``), and whether a retry may help."""

    what: str
    advice: str
    may_retry: bool

    @property
    def text(self) -> str:
        return f"{self.what} {self.advice}".strip()


def masivo_message(excerpt: str) -> str:
    """Masivo's own words in an answer: "error: details" of its JSON body, or the excerpt
    itself, shortened to ``MESSAGE_CHARS``."""
    text = (excerpt or "").strip()
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        parts = []
        for key in ("error", "message", "details", "detail"):
            value = body.get(key)
            if isinstance(value, list | dict):
                value = json.dumps(value, ensure_ascii=False)
            if value not in (None, "") and str(value).strip() not in parts:
                parts.append(str(value).strip())
        text = ": ".join(parts) or text
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1].rstrip() + "…"


def _refusal(failure: ChunkFailure) -> str:
    """The sentence's head for an answer that is final for the body."""
    code = failure.status_code
    if failure.outcome == Outcome.AUTH_ERROR:
        if code:
            return _("Masivo's token endpoint refused the console's API key (%(code)s)") % {
                "code": code
            }
        return _("Masivo's token endpoint refused the console's API key")
    known = {
        400: _("Masivo refused this chunk's request as malformed (400)"),
        401: _("Masivo refused the console's token (401), even a freshly fetched one"),
        403: _("Masivo refused the console access (403)"),
        404: _("Masivo's address answered that it does not exist (404)"),
        409: _("Masivo refused this chunk's request as a conflict with what it holds (409)"),
        413: _("Masivo refused this chunk's request as too large (413), even alone"),
        422: _("Masivo refused this chunk's request as invalid (422)"),
    }
    if code in known:
        return known[code]
    if code:
        return _("Masivo refused this chunk's request (%(code)s)") % {"code": code}
    return _("The request could not be made (%(error)s)") % {
        "error": failure.error_class or _("an error of the console's settings")
    }


def _refusal_advice(failure: ChunkFailure) -> str:
    code = failure.status_code
    if failure.outcome == Outcome.AUTH_ERROR or code in ACCESS_CODES:
        return _(
            "Check the console's Masivo credentials (MASIVO_API_KEY or MASIVO_TOKEN), then "
            "send these customers in a new batch; retrying this chunk cannot help."
        )
    if code in CONTENT_CODES or failure.outcome == Outcome.TOO_LARGE:
        if failure.customer_count == 1:
            return _(
                "This customer is not acceptable to Masivo: fix it in a new batch; "
                "retrying cannot help."
            )
        return _(
            "A customer of it is not acceptable to Masivo: fix it in a new batch; "
            "retrying cannot help."
        )
    if code in ADDRESS_CODES or not code:
        return _(
            "Check Masivo's address in the console's settings (MASIVO_BASE_URL), then send "
            "these customers in a new batch; retrying this chunk cannot help."
        )
    return _(
        "Sending the same request again cannot help: once the cause is fixed, send these "
        "customers in a new batch."
    )


def _passing_cause(failure: ChunkFailure) -> str:
    """What the last of the attempts ran into, for a chunk that failed on passing failures."""
    code = failure.status_code
    error = failure.error_class or _("no answer")
    if failure.outcome == Outcome.LEASE_EXPIRED:
        return _("the worker sending it stopped before Masivo answered")
    if failure.outcome == Outcome.AUTH_ERROR:
        return _("Masivo's token endpoint did not give the console a token (%(code)s)") % {
            "code": code or error
        }
    if code == 429:
        return _("Masivo asked the console to slow down (429)")
    if code == 503:
        return _("Masivo was unavailable (503)")
    if code == 408:
        return _("Masivo timed out waiting for the request (408)")
    if code:
        return _("Masivo answered with an error (%(code)s)") % {"code": code}
    if failure.outcome == Outcome.RETRY_NOT_SENT:
        return _("the connection to Masivo failed (%(error)s)") % {"error": error}
    return _("no answer came back in time, or the connection dropped (%(error)s)") % {
        "error": error
    }


def _quoted(head: str, message: str) -> str:
    if message:
        return _("%(what)s: “%(message)s”.") % {"what": head, "message": message}
    return _("%(what)s.") % {"what": head}


def failure_text(failure: ChunkFailure) -> FailureText:
    """A failed chunk in words (see the module's docstring)."""
    if not failure.is_recorded:
        # Nothing recorded to explain (a chunk from before answers were kept): its error.
        return FailureText(what=failure.error, advice="", may_retry=not failure.is_permanent)
    message = masivo_message(failure.excerpt)
    if failure.is_permanent:
        return FailureText(
            what=_quoted(_refusal(failure), message),
            advice=_refusal_advice(failure),
            may_retry=False,
        )
    head = ngettext(
        "Masivo did not accept this chunk in %(attempts)s attempt; the last one: %(cause)s",
        "Masivo did not accept this chunk in %(attempts)s attempts; the last one: %(cause)s",
        failure.attempts,
    ) % {"attempts": failure.attempts, "cause": _passing_cause(failure)}
    advice = _("This may pass: a retry may succeed (“Retry failed chunks”).")
    if failure.may_have_arrived:
        advice += " " + _(
            "Masivo may already hold these customers: sent again, they may be there twice, "
            "and are marked so."
        )
    return FailureText(what=_quoted(head, message), advice=advice, may_retry=True)


def split_text(failure: ChunkFailure) -> str:
    """A chunk split after a refusal, in words."""
    head = _refusal(failure) if failure.status_code else _("Masivo refused this chunk's request")
    return (
        _quoted(head, masivo_message(failure.excerpt))
        + " "
        + _("It was split in two to find the customers Masivo refuses.")
    )


def waiting_text(failure: ChunkFailure) -> str:
    """A chunk waiting to be sent again after a passing failure, in words."""
    head = _("Waiting to be sent again; the last attempt: %(cause)s") % {
        "cause": _passing_cause(failure)
    }
    return _quoted(head, masivo_message(failure.excerpt))


def held_text(failure: ChunkFailure) -> str:
    """A chunk held with an unknown outcome, in words."""
    head = _("Outcome unknown; the last attempt: %(cause)s") % {"cause": _passing_cause(failure)}
    return (
        _quoted(head, masivo_message(failure.excerpt))
        + " "
        + _("Masivo may or may not hold these customers: the chunk waits for your decision.")
    )


def cancelled_text() -> str:
    return _("The job was cancelled before this chunk was sent.")
