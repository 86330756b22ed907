"""A failed chunk in words: what Masivo refused, Masivo's own message, what the operator
can do; whether a retry may help comes from the chunk's record, never from the words."""

from __future__ import annotations

import pytest

from migrations_jobs.failures import MESSAGE_CHARS, failure_text, masivo_message, split_text
from migrations_jobs.models import ChunkAttempt
from migrations_jobs.selectors import ChunkFailure

Outcome = ChunkAttempt.Outcome
INVALID = '{"error": "Invalid customer entry", "details": "customers[0] (id \\"c-1\\"): email"}'


def failure(**fields) -> ChunkFailure:
    values = {
        "chunk_id": 1,
        "status_code": 422,
        "outcome": Outcome.PERMANENT,
        "is_permanent": True,
        "attempts": 1,
        "customer_count": 1,
        "may_have_arrived": False,
        "error": "HTTP 422: " + INVALID,
        "excerpt": INVALID,
        "error_class": "",
    }
    return ChunkFailure(**{**values, **fields})


def test_a_refused_customer_reads_what_masivo_refused_and_that_retrying_cannot_help():
    text = failure_text(failure())

    assert text.what == (
        "Masivo refused this chunk's request as invalid (422): "
        '“Invalid customer entry: customers[0] (id "c-1"): email”.'
    )
    assert text.advice == (
        "This customer is not acceptable to Masivo: fix it in a new batch; retrying cannot help."
    )
    assert text.may_retry is False
    assert "HTTP 422" not in text.text
    assert "{" not in text.text


def test_a_chunk_of_many_refused_customers_says_one_of_them_is_not_acceptable():
    text = failure_text(failure(customer_count=3, status_code=400))

    assert text.what.startswith("Masivo refused this chunk's request as malformed (400): ")
    assert text.advice.startswith("A customer of it is not acceptable to Masivo")


@pytest.mark.parametrize(
    ("fields", "what", "advice"),
    [
        (
            {"status_code": 403},
            "Masivo refused the console access (403)",
            "Check the console's Masivo credentials",
        ),
        (
            {"status_code": 401, "outcome": Outcome.AUTH_ERROR},
            "Masivo's token endpoint refused the console's API key (401)",
            "Check the console's Masivo credentials",
        ),
        (
            {"status_code": 404},
            "Masivo's address answered that it does not exist (404)",
            "Check Masivo's address in the console's settings (MASIVO_BASE_URL)",
        ),
        (
            {"status_code": None, "error_class": "InvalidURL", "excerpt": ""},
            "The request could not be made (InvalidURL).",
            "Check Masivo's address",
        ),
    ],
)
def test_refusals_of_access_or_address_say_which_setting_to_check(fields, what, advice):
    text = failure_text(failure(**fields))

    assert text.what.startswith(what)
    assert text.advice.startswith(advice)
    assert text.may_retry is False


@pytest.mark.parametrize(
    ("fields", "cause"),
    [
        ({"status_code": 503, "outcome": Outcome.RETRY_NOT_SENT}, "Masivo was unavailable (503)"),
        (
            {"status_code": 429, "outcome": Outcome.RETRY_NOT_SENT},
            "Masivo asked the console to slow down (429)",
        ),
        (
            {"status_code": 502, "outcome": Outcome.RETRY_UNKNOWN},
            "Masivo answered with an error (502)",
        ),
        (
            {"status_code": None, "outcome": Outcome.RETRY_UNKNOWN, "error_class": "ReadTimeout"},
            "no answer came back in time, or the connection dropped (ReadTimeout)",
        ),
        (
            {"status_code": None, "outcome": Outcome.RETRY_NOT_SENT, "error_class": "ConnectError"},
            "the connection to Masivo failed (ConnectError)",
        ),
        (
            {"status_code": None, "outcome": Outcome.LEASE_EXPIRED},
            "the worker sending it stopped before Masivo answered",
        ),
    ],
)
def test_passing_failures_say_the_last_cause_and_that_a_retry_may_succeed(fields, cause):
    text = failure_text(failure(is_permanent=False, attempts=8, excerpt="", **fields))

    assert text.what == f"Masivo did not accept this chunk in 8 attempts; the last one: {cause}."
    assert text.advice == "This may pass: a retry may succeed (“Retry failed chunks”)."
    assert text.may_retry is True


def test_a_chunk_that_may_have_arrived_warns_that_a_retry_may_send_it_twice():
    text = failure_text(
        failure(
            is_permanent=False,
            status_code=500,
            outcome=Outcome.RETRY_UNKNOWN,
            attempts=1,
            may_have_arrived=True,
            excerpt='{"error": "Internal Server Error"}',
        )
    )

    assert text.what == (
        "Masivo did not accept this chunk in 1 attempt; the last one: Masivo answered with an "
        "error (500): “Internal Server Error”."
    )
    assert "they may be there twice" in text.advice


def test_a_chunk_without_a_recorded_answer_keeps_its_error():
    text = failure_text(failure(status_code=None, outcome="", error="plain error"))

    assert (text.what, text.advice) == ("plain error", "")


def test_masivo_message_reads_its_json_or_keeps_the_text_shortened():
    assert masivo_message('{"error": "Bad Request", "details": ["a", "b"]}') == (
        'Bad Request: ["a", "b"]'
    )
    assert masivo_message("<html>Bad   gateway</html>") == "<html>Bad gateway</html>"
    long = masivo_message("x" * 600)
    assert len(long) == MESSAGE_CHARS
    assert long.endswith("…")


def test_a_split_chunk_says_why_it_was_split():
    assert split_text(failure(customer_count=4)) == (
        "Masivo refused this chunk's request as invalid (422): “Invalid customer entry: "
        'customers[0] (id "c-1"): email”. It was split in two to find the customers Masivo '
        "refuses."
    )
