"""Every answer Masivo may give, and what the engine does with it.

The services are called directly (``chunk_claim`` then ``chunk_send``, as a worker's task
does) against the sandbox over loopback, whose next answers are scripted. The mapping under
test is DESIGN.md's ("Transient failures (network errors, timeouts, 429, 5xx) are retried
with exponential backoff and jitter, honouring Retry-After; a 401 refreshes the token once;
other 4xx fail the chunk with the response kept") refined by the engine's own
(``migrations_jobs.client.outcome_for_status`` and ``services.SPLIT_STATUS_CODES``: a 400,
409, 413 or 422 blames the body, so a chunk of several customers is split until the
refused customers are alone).
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field

import pytest
from django.utils import timezone

from customers.models import Outcome
from migrations_jobs.client import MasivoClient
from migrations_jobs.models import ChunkAttempt, JobChunk, MigrationJob
from migrations_jobs.sandbox.models import SandboxRequest
from migrations_jobs.sandbox.services import sandbox_arrivals, sandbox_script
from migrations_jobs.sandbox.tokens import sandbox_token_issue
from migrations_jobs.services import (
    chunk_claim,
    chunk_send,
    job_finish_if_done,
    job_start,
    job_transition,
)
from tests.reliability.conftest import figure
from tests.worker import approved_batch, broker_purge

ChunkStatus = JobChunk.Status
Unknown = ChunkAttempt.Outcome.RETRY_UNKNOWN
NotSent = ChunkAttempt.Outcome.RETRY_NOT_SENT

MAX_ATTEMPTS = 3
READ_TIMEOUT_S = 0.4
# A slow answer arrives this long after the request: well past the read timeout.
SLOW_ANSWER_S = 1.2
WORKER = "matrix-worker"


@dataclass(frozen=True)
class Case:
    label: str
    # Scripted answers, oldest first: (status, Retry-After, delay before answering).
    script: tuple[tuple[int, int | None, float], ...] = ()
    # What the first answer makes the engine do: sent, refresh, split, fail or retry.
    action: str = ""
    unknown_outcome: bool = False
    customers: int = 4
    # "expired": an expired token sits in the cache; "refused": nothing listens.
    setup: str = ""
    retry_after_s: int | None = None
    extra: dict = field(default_factory=dict)


def answers(status: int, times: int = 1, retry_after: int | None = None, delay: float = 0.0):
    return ((status, retry_after, delay),) * times


CASES = [
    Case("201", answers(201), "sent"),
    Case("400", answers(400), "split"),
    Case("401 expired token", (), "refresh", setup="expired"),
    Case("401 again after a fresh token", answers(401, 2), "fail"),
    Case("403", answers(403), "fail"),
    Case("404", answers(404), "fail"),
    Case("413", answers(413), "split"),
    Case("422", answers(422), "split"),
    Case("422 for a lone customer", answers(422), "fail", customers=1),
    Case("429 Retry-After 2", answers(429, MAX_ATTEMPTS, 2), "retry", retry_after_s=2),
    Case("500", answers(500, MAX_ATTEMPTS), "retry", unknown_outcome=True),
    Case("502", answers(502, MAX_ATTEMPTS), "retry", unknown_outcome=True),
    Case("503", answers(503, MAX_ATTEMPTS), "retry"),
    Case("503 Retry-After 1", answers(503, MAX_ATTEMPTS, 1), "retry", retry_after_s=1),
    Case("504", answers(504, MAX_ATTEMPTS), "retry", unknown_outcome=True),
    Case("connection refused", (), "retry", setup="refused"),
    Case(
        "read timeout",
        answers(201, MAX_ATTEMPTS, None, SLOW_ANSWER_S),
        "retry",
        unknown_outcome=True,
    ),
]


@pytest.fixture
def engine(masivo, settings):
    """The engine as a worker runs it, with short timeouts and backoffs."""
    settings.MIGRATION_MIN_INTERVAL_S = 0
    settings.MIGRATION_HOURLY_CAP = 0
    settings.MIGRATION_BACKOFF_BASE_S = 0.05
    settings.MIGRATION_BACKOFF_MAX_S = 0.2
    settings.MIGRATION_MAX_ATTEMPTS = MAX_ATTEMPTS
    settings.MIGRATION_LEASE_S = 30
    settings.MIGRATION_MAX_IN_FLIGHT = 1
    settings.MASIVO_READ_TIMEOUT_S = READ_TIMEOUT_S
    settings.MASIVO_TOTAL_TIMEOUT_S = 2 * READ_TIMEOUT_S
    MasivoClient().clear_cached_token()
    yield settings
    MasivoClient().clear_cached_token()
    broker_purge()  # job_start published runs that no worker is meant to take


def running_job(*, stager, submitter, settings, customers: int) -> MigrationJob:
    settings.MIGRATION_CHUNK_SIZE = customers
    batch = approved_batch(creator=stager, approver=submitter, size=customers)
    job = job_start(batch=batch, user=submitter)
    job_transition(pk=job.pk, to=MigrationJob.Status.RUNNING)
    return job


def send_next(job: MigrationJob):
    """Claim the job's next due chunk and send it, as one step of a worker's run."""
    chunk = chunk_claim(job_id=job.pk, worker=WORKER)
    if chunk is None:
        return None
    return chunk_send(chunk_id=chunk.pk, worker=WORKER)


def drive(job: MigrationJob, *, timeout_s: float = 30.0) -> MigrationJob:
    """Claim and send until no chunk is open, sleeping until the next one is due."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if send_next(job) is not None:
            continue
        due = (
            JobChunk.objects.filter(job=job, status=ChunkStatus.PENDING)
            .order_by("not_before")
            .values_list("not_before", flat=True)
            .first()
        )
        if due is None:
            break
        time.sleep(min(max((due - timezone.now()).total_seconds(), 0.02), 1.0))
    job_finish_if_done(job_id=job.pk)
    job.refresh_from_db()
    return job


def prime_expired_token() -> None:
    """Put a token that Masivo will refuse as expired where the client keeps its token,
    marked as still good (as a clock running behind would)."""
    client = MasivoClient()
    expired = sandbox_token_issue(lifetime_s=-60)
    client.shared_token.put(
        {"token": expired, "refresh_at": time.time() + 600, "expires_at": time.time() - 60},
        timeout_s=600,
    )
    client.close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def action_of(report, chunk: JobChunk) -> str:
    if report.status == ChunkStatus.SENT:
        refreshed = chunk.attempt_log.filter(token_refreshed=True).exists()
        return "refresh" if refreshed else "sent"
    return {
        ChunkStatus.SPLIT: "split",
        ChunkStatus.FAILED: "fail",
        ChunkStatus.PENDING: "retry",
    }.get(report.status, report.status)


def shortest_wait_after_retry_after(job: MigrationJob) -> float | None:
    """Seconds between each answer carrying Retry-After and the next request's arrival at
    the sandbox, minus the Retry-After: the smallest margin (negative would be a breach)."""
    attempts = list(ChunkAttempt.objects.filter(chunk__job=job).order_by("started_at", "pk"))
    arrivals = list(
        SandboxRequest.objects.order_by("received_at").values_list("received_at", flat=True)
    )
    margins = []
    for index, attempt in enumerate(attempts[:-1]):
        if not attempt.retry_after_s:
            continue
        answered = attempt.started_at.timestamp() + attempt.duration_s
        later = [a.timestamp() for a in arrivals if a.timestamp() > attempt.started_at.timestamp()]
        next_started = attempts[index + 1].started_at.timestamp()
        next_arrival = min(later[1:] or [next_started])
        margins.append(min(next_started, next_arrival) - answered - attempt.retry_after_s)
    return round(min(margins), 3) if margins else None


@pytest.mark.parametrize("case", CASES, ids=[case.label for case in CASES])
def test_each_answer_gets_the_documented_action(case: Case, engine, stager, submitter):
    for status, retry_after, delay in case.script:
        sandbox_script(status_code=status, retry_after_s=retry_after, delay_s=delay)
    if case.setup == "expired":
        prime_expired_token()
    elif case.setup == "refused":
        engine.MASIVO_BASE_URL = f"http://127.0.0.1:{closed_port()}/api/storefront/v1"
    job = running_job(stager=stager, submitter=submitter, settings=engine, customers=case.customers)
    first_chunk = job.chunks.get()

    report = send_next(job)
    first_chunk.refresh_from_db()
    action = action_of(report, first_chunk)
    first = first_chunk.attempt_log.order_by("pk").first()
    job = drive(job)
    first_chunk.refresh_from_db()

    chunks = job.chunks.all()
    requests = sandbox_arrivals()["requests"]
    margin = shortest_wait_after_retry_after(job)
    figures = figure(
        f"status_matrix[{case.label}]",
        action=action,
        first_outcome=first.outcome,
        attempts=first_chunk.attempts,
        requests=requests,
        retried_unknown=job.retried_unknown_count,
        job=job.status,
        retry_after_margin_s=margin,
    )
    assert action == case.action, figures
    assert max(c.attempts for c in chunks) <= MAX_ATTEMPTS, figures

    if case.action == "sent":
        assert (first_chunk.status, first_chunk.attempts, requests) == (ChunkStatus.SENT, 1, 1)
        assert job.status == MigrationJob.Status.SUCCEEDED, figures
    elif case.action == "refresh":
        # One attempt; on the wire a 401 for the expired token, then the same body again
        # with a fresh token: one token request, no second refresh.
        assert first.status_code == 201, figures
        assert first.token_refreshed, figures
        statuses = list(SandboxRequest.objects.order_by("pk").values_list("status_code", "details"))
        assert statuses == [(401, "Token expired"), (201, "")], figures
        assert sandbox_arrivals()["tokens_issued"] == 1, figures
        assert job.status == MigrationJob.Status.SUCCEEDED, figures
    elif case.action == "split":
        halves = list(first_chunk.children.order_by("sequence"))
        assert [c.customer_count for c in halves] == [2, 2], figures
        assert halves[0].customer_ids + halves[1].customer_ids == first_chunk.customer_ids
        assert first_chunk.last_status_code == first.status_code == case.script[0][0]
        assert all(c.status == ChunkStatus.SENT for c in halves), figures
        assert job.status == MigrationJob.Status.SUCCEEDED, figures
    elif case.action == "fail":
        # Failed at once, with the answer kept for the operator; never sent again.
        assert first_chunk.status == ChunkStatus.FAILED, figures
        assert first_chunk.attempts == 1, figures
        assert first_chunk.last_error.startswith(f"HTTP {case.script[-1][0]}"), figures
        assert first.response_excerpt, figures
        assert requests == len(case.script), figures
        assert set(job.batch.customers.values_list("outcome", flat=True)) == {Outcome.FAILED}
        assert job.status == MigrationJob.Status.FAILED, figures
    else:
        # Retried until MIGRATION_MAX_ATTEMPTS is spent, and not once more.
        assert first.outcome == (Unknown if case.unknown_outcome else NotSent), figures
        assert first_chunk.status == ChunkStatus.FAILED, figures
        assert first_chunk.attempts == MAX_ATTEMPTS, figures
        assert first_chunk.attempt_log.count() == MAX_ATTEMPTS, figures
        assert job.request_count == MAX_ATTEMPTS, figures
        expected_requests = 0 if case.setup == "refused" else MAX_ATTEMPTS
        assert requests == expected_requests, figures
        assert first_chunk.last_error.startswith(f"Gave up after {MAX_ATTEMPTS} attempts")
        unknown = MAX_ATTEMPTS - 1 if case.unknown_outcome else 0
        assert job.retried_unknown_count == first_chunk.unknown_outcome_retries == unknown
        if case.retry_after_s:
            assert margin is not None, figures
            assert margin >= 0, figures
            assert all(a.retry_after_s == case.retry_after_s for a in first_chunk.attempt_log.all())
        assert job.status == MigrationJob.Status.FAILED, figures
