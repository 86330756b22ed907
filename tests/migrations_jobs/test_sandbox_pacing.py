"""The sandbox's limiter clock (arrival or processing), its network jitter, and the
middleware that stamps arrivals: what the pacing benchmark measures the console against."""

import datetime as dt
import itertools

import pytest
from django.core.exceptions import MiddlewareNotUsed, ValidationError
from django.http import HttpResponse
from django.urls import reverse
from django.utils import timezone

from migrations_jobs.sandbox.answers import Refusal
from migrations_jobs.sandbox.middleware import ARRIVED_AT, SandboxArrivalMiddleware
from migrations_jobs.sandbox.models import (
    SINGLETON_PK,
    RateClock,
    SandboxConfig,
    SandboxRateWindow,
    SandboxRequest,
)
from migrations_jobs.sandbox.ratelimit import (
    arrival_next_free,
    arrival_us,
    rate_window_take,
    request_arrival,
)
from migrations_jobs.sandbox.services import sandbox_configure, sandbox_migrate, sandbox_reset
from migrations_jobs.sandbox.tokens import sandbox_token_issue
from tests.migrations_jobs.conftest import body_for

pytestmark = pytest.mark.usefixtures("sandbox")

T0 = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
MIGRATE = reverse("masivo_sandbox:migrate")


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def counted_arrivals() -> list[dt.datetime]:
    window = SandboxRateWindow.objects.get(pk=SINGLETON_PK)
    return [at(us / 1_000_000 - T0.timestamp()) for us in window.recent_arrivals]


def is_counted(config: SandboxConfig, seconds: float) -> bool:
    """Whether the limiter counts a request that arrived ``seconds`` after T0 (False: it
    answered 429)."""
    try:
        rate_window_take(config=config, now=at(seconds))
    except Refusal as refusal:
        if refusal.status_code != 429:
            raise
        return False
    return True


# --- the arrival clock ------------------------------------------------------------------------


def test_arrival_clock_refuses_an_arrival_within_the_interval_decided_after_a_later_one():
    config = sandbox_configure(rate_interval_s=1.0, rate_clock=RateClock.ARRIVAL)
    rate_window_take(config=config, now=at(1.5))

    with pytest.raises(Refusal) as refused:
        rate_window_take(config=config, now=at(0.9))

    assert refused.value.status_code == 429
    assert refused.value.reason == SandboxRequest.Reason.RATE_LIMITED
    # Free again an interval after the counted arrival it came too close to: 2.5 - 0.9 s.
    assert refused.value.retry_after_s == 2
    assert counted_arrivals() == [at(1.5)]


def test_arrival_clock_refuses_an_arrival_too_close_to_an_older_counted_one():
    config = sandbox_configure(rate_interval_s=1.0, rate_clock=RateClock.ARRIVAL)
    rate_window_take(config=config, now=at(0.0))
    rate_window_take(config=config, now=at(3.0))

    assert is_counted(config, 0.5) is False
    assert counted_arrivals() == [at(0.0), at(3.0)]


def test_arrival_clock_counts_an_earlier_arrival_an_interval_away_from_every_counted_one():
    config = sandbox_configure(rate_interval_s=1.0, rate_clock=RateClock.ARRIVAL)
    rate_window_take(config=config, now=at(0.0))
    rate_window_take(config=config, now=at(3.0))

    assert is_counted(config, 1.5) is True
    assert is_counted(config, 2.2) is False
    assert counted_arrivals() == [at(0.0), at(1.5), at(3.0)]


@pytest.mark.parametrize("order", list(itertools.permutations([0.0, 1.0, 2.05, 3.1])))
def test_arrival_clock_verdicts_do_not_depend_on_the_order_of_decisions(order):
    config = sandbox_configure(rate_interval_s=1.0, rate_clock=RateClock.ARRIVAL)

    verdicts = {seconds: is_counted(config, seconds) for seconds in order}

    # Exactly an interval apart is allowed; 2.05 and 3.1 are more than that apart.
    assert verdicts == {0.0: True, 1.0: True, 2.05: True, 3.1: True}
    assert is_counted(config, 2.5) is False


def test_arrival_rule_finds_the_first_moment_clear_of_every_counted_arrival():
    counted = [0, 1_000_000, 3_000_000]

    def free(seconds: float) -> float:
        found = arrival_next_free(
            arrival_us=round(seconds * 1_000_000), counted_us=counted, interval_us=1_000_000
        )
        return found / 1_000_000

    assert free(-1.0) == -1.0
    assert free(-0.5) == 2.0  # clear of 0 at 1.0, of 1.0 at 2.0
    assert free(1.0) == 2.0
    assert free(2.0) == 2.0
    assert free(2.5) == 4.0
    assert free(5.0) == 5.0


def test_arrival_clock_keeps_only_the_most_recent_counted_arrivals():
    config = sandbox_configure(rate_interval_s=0.1, rate_clock=RateClock.ARRIVAL)

    for n in range(40):
        rate_window_take(config=config, now=at(n * 0.1))

    window = SandboxRateWindow.objects.get(pk=SINGLETON_PK)
    assert window.recent_arrivals == [arrival_us(at(n * 0.1)) for n in range(8, 40)]
    assert window.last_request_at == at(3.9)
    assert window.window_count == 40


# --- the processing clock ---------------------------------------------------------------------


def test_processing_clock_compares_with_the_last_counted_request_only():
    config = sandbox_configure(rate_interval_s=1.0, rate_clock=RateClock.PROCESSING)
    rate_window_take(config=config, now=at(1.5))

    # An interval away from every counted request, but before the last one: refused, as
    # the sandbox always did.
    assert is_counted(config, 0.0) is False
    assert is_counted(config, 2.4) is False
    assert is_counted(config, 2.5) is True


@pytest.mark.parametrize(
    ("clock", "stamped", "counted"),
    [
        (RateClock.ARRIVAL, True, at(0.0)),
        (RateClock.ARRIVAL, False, at(0.3)),
        (RateClock.PROCESSING, True, at(0.3)),
    ],
)
def test_the_clock_chooses_the_moment_counted(clock, stamped, counted):
    config = sandbox_configure(rate_clock=clock)

    arrival = request_arrival(
        config=config, arrived_at=at(0.0) if stamped else None, processed_at=at(0.3)
    )

    assert arrival.counted_at == counted
    assert arrival.jitter_s == 0.0


@pytest.mark.parametrize("clock", [RateClock.ARRIVAL, RateClock.PROCESSING])
def test_a_migrate_request_is_recorded_at_the_moment_its_clock_counts(clock):
    sandbox_configure(rate_clock=clock)
    arrived_at = timezone.now() - dt.timedelta(seconds=0.5)
    processed_at = timezone.now()

    answer = sandbox_migrate(
        authorization=f"Bearer {sandbox_token_issue(lifetime_s=600)}",
        content_type="application/json",
        body=body_for("c-1"),
        arrived_at=arrived_at,
        processed_at=processed_at,
    )

    assert answer.status_code == 201
    expected = arrived_at if clock == RateClock.ARRIVAL else processed_at
    assert SandboxRequest.objects.get().received_at == expected


# --- jitter -----------------------------------------------------------------------------------


def test_jitter_delays_the_counted_arrival_by_a_draw_within_the_bound():
    config = sandbox_configure(jitter_s=0.05)

    arrivals = [
        request_arrival(config=config, arrived_at=at(0.0), processed_at=at(0.3)) for _ in range(200)
    ]

    jitters = [arrival.jitter_s for arrival in arrivals]
    assert all(0.0 <= jitter <= 0.05 for jitter in jitters)
    assert max(jitters) - min(jitters) > 0.03
    assert all(a.counted_at == at(0.0) + dt.timedelta(seconds=a.jitter_s) for a in arrivals)


def test_jitter_draw_is_kept_within_the_bound():
    config = sandbox_configure(jitter_s=0.05)

    late = request_arrival(
        config=config, arrived_at=at(0.0), processed_at=at(0.3), draw=lambda _a, _b: 0.07
    )

    assert late.jitter_s == 0.05
    assert late.counted_at == at(0.05)


def test_no_jitter_by_default():
    arrival = request_arrival(
        config=SandboxConfig.current(), arrived_at=at(0.0), processed_at=at(0.3)
    )

    assert (arrival.counted_at, arrival.jitter_s) == (at(0.0), 0.0)


def test_jittered_request_is_counted_and_recorded_after_its_jitter_was_slept():
    sandbox_configure(jitter_s=0.2, rate_interval_s=1.0)
    arrived_at = timezone.now()

    answer = sandbox_migrate(
        authorization=f"Bearer {sandbox_token_issue(lifetime_s=600)}",
        content_type="application/json",
        body=body_for("c-1"),
        arrived_at=arrived_at,
    )

    decided_by = timezone.now()
    assert answer.status_code == 201
    record = SandboxRequest.objects.get()
    assert 0.0 <= record.jitter_s <= 0.2
    assert record.received_at == arrived_at + dt.timedelta(seconds=record.jitter_s)
    assert record.received_at <= decided_by
    assert counted_arrivals()[-1] == record.received_at


# --- the middleware ---------------------------------------------------------------------------


def test_arrival_middleware_stamps_sandbox_requests_only(rf):
    middleware = SandboxArrivalMiddleware(lambda request: HttpResponse())
    sandbox = rf.post(MIGRATE)
    others = [rf.get("/admin/"), rf.post("/api/jobs/"), rf.get("/sandboxes/")]

    before = timezone.now()
    for request in [sandbox, *others]:
        middleware(request)

    assert before <= getattr(sandbox, ARRIVED_AT) <= timezone.now()
    assert [hasattr(request, ARRIVED_AT) for request in others] == [False, False, False]


def test_arrival_middleware_runs_before_every_other(settings):
    assert settings.MIDDLEWARE[0] == "migrations_jobs.sandbox.middleware.SandboxArrivalMiddleware"


def test_arrival_middleware_is_left_out_without_the_sandbox(settings):
    settings.MASIVO_SANDBOX = False

    with pytest.raises(MiddlewareNotUsed):
        SandboxArrivalMiddleware(lambda request: HttpResponse())


def test_a_request_through_the_stack_is_counted_at_its_stamped_arrival(client, monkeypatch):
    stamped = []
    original = SandboxArrivalMiddleware.__call__

    def spy(self, request):
        response = original(self, request)
        stamped.append(getattr(request, ARRIVED_AT, None))
        return response

    monkeypatch.setattr(SandboxArrivalMiddleware, "__call__", spy)
    sandbox_configure(rate_clock=RateClock.ARRIVAL)

    response = client.post(
        MIGRATE,
        data=body_for("c-1"),
        content_type="application/json",
        headers={"Authorization": f"Bearer {sandbox_token_issue(lifetime_s=600)}"},
    )

    assert response.status_code == 201
    assert stamped[0] is not None
    assert SandboxRequest.objects.get().received_at == stamped[0]


# --- configuration and admin ------------------------------------------------------------------


def test_clock_and_jitter_start_from_settings(settings):
    settings.SANDBOX_RATE_CLOCK = "processing"
    settings.SANDBOX_LATENCY_JITTER_S = 0.05
    sandbox_reset()

    config = SandboxConfig.current()

    assert (config.rate_clock, config.jitter_s) == (RateClock.PROCESSING, 0.05)


def test_the_default_clock_is_arrival():
    assert SandboxConfig.current().rate_clock == RateClock.ARRIVAL


@pytest.mark.parametrize("fields", [{"rate_clock": "wall"}, {"jitter_s": -0.1}])
def test_configure_refuses_a_bad_clock_or_jitter(fields):
    with pytest.raises(ValidationError):
        sandbox_configure(**fields)


def test_admin_configuration_page_edits_clock_and_jitter(admin_client):
    config = SandboxConfig.current()
    page = reverse("admin:masivo_sandbox_sandboxconfig_change", args=[config.pk])

    content = admin_client.get(page).content.decode()

    assert 'name="rate_clock"' in content
    assert 'name="jitter_s"' in content
