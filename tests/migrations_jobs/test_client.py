"""The Masivo client over real HTTP, against the sandbox served by the live server."""

import datetime as dt
import logging
import random
import socket
import threading
import time
from email.utils import format_datetime

import httpx
import pytest
from django.core.cache.backends.locmem import LocMemCache

from migrations_jobs.client import (
    MasivoAuthError,
    MasivoClient,
    SendOutcome,
    backoff_delay,
    redact,
)
from migrations_jobs.client.headers import retry_after_seconds
from migrations_jobs.client.redaction import REDACTED
from migrations_jobs.client.results import ERR_AUTH_STATUS
from migrations_jobs.client.tokens import token_expiry, token_refresh_at
from migrations_jobs.sandbox.models import SandboxRequest, SandboxTokenRequest
from migrations_jobs.sandbox.services import (
    sandbox_arrivals,
    sandbox_configure,
    sandbox_received_ids,
    sandbox_script,
)
from migrations_jobs.sandbox.tokens import sandbox_token_issue
from tests.migrations_jobs.conftest import body_for

live = pytest.mark.django_db(transaction=True)


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- over HTTP --------------------------------------------------------------------------------


@live
def test_accepted_batch_arrives_with_201(make_client):
    result = make_client().send_customers(body_for("c-1", "c-2"))

    assert result.status_code == 201
    assert result.outcome is SendOutcome.ACCEPTED
    assert result.error_class == ""
    assert "enqueued" in result.response_excerpt
    assert result.token_refreshed is False
    assert set(result.ratelimit) == {"limit", "remaining", "reset"}
    assert result.duration_s > 0
    assert sandbox_received_ids() == {"c-1", "c-2"}


@live
def test_the_moment_a_request_left_is_reported_and_matches_its_arrival(make_client):
    client = make_client()
    client.ensure_token()
    called = dt.datetime.now(dt.UTC)

    result = client.send_customers(body_for("c-1"))

    answered = dt.datetime.now(dt.UTC)
    arrived = SandboxRequest.objects.get().received_at
    assert called <= result.left_at <= arrived <= answered


@live
@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (201, SendOutcome.ACCEPTED),
        (400, SendOutcome.PERMANENT),
        (403, SendOutcome.PERMANENT),
        (404, SendOutcome.PERMANENT),
        (413, SendOutcome.TOO_LARGE),
        (422, SendOutcome.PERMANENT),
        (429, SendOutcome.RETRY_NOT_SENT),
        (500, SendOutcome.RETRY_UNKNOWN),
        (502, SendOutcome.RETRY_UNKNOWN),
        (503, SendOutcome.RETRY_NOT_SENT),
        (504, SendOutcome.RETRY_UNKNOWN),
    ],
)
def test_scripted_status_maps_to_outcome(make_client, status, outcome):
    sandbox_script(status_code=status)

    result = make_client().send_customers(body_for("c-1"))

    assert result.status_code == status
    assert result.outcome is outcome
    assert result.token_refreshed is False
    assert sandbox_arrivals()["accepted_requests"] == (1 if status == 201 else 0)


@live
def test_401_refreshes_the_token_once_and_sends_once_more(make_client):
    client = make_client()
    assert client.ensure_token() is True
    sandbox_script(status_code=401)

    result = client.send_customers(body_for("c-1"))

    assert result.outcome is SendOutcome.ACCEPTED
    assert result.token_refreshed is True
    arrivals = sandbox_arrivals()
    assert arrivals["tokens_issued"] == 2
    assert arrivals["status_counts"] == {201: 1, 401: 1}


@live
def test_second_401_is_permanent_and_not_retried_again(make_client):
    sandbox_script(status_code=401)
    sandbox_script(status_code=401)
    sandbox_script(status_code=201)

    result = make_client().send_customers(body_for("c-1"))

    assert result.status_code == 401
    assert result.outcome is SendOutcome.PERMANENT
    assert result.token_refreshed is True
    assert sandbox_arrivals()["status_counts"] == {401: 2}


@live
def test_static_token_is_used_as_is_and_never_refreshed(make_client, settings):
    settings.MASIVO_TOKEN = sandbox_token_issue(lifetime_s=600)
    settings.MASIVO_API_KEY = ""
    client = make_client()
    assert client.send_customers(body_for("c-1")).outcome is SendOutcome.ACCEPTED
    sandbox_script(status_code=401)

    result = client.send_customers(body_for("c-2"))

    assert result.outcome is SendOutcome.PERMANENT
    assert result.token_refreshed is False
    assert sandbox_arrivals()["token_requests"] == 0


@live
def test_429_carries_retry_after_and_rate_limit_headers(make_client):
    sandbox_script(status_code=429, retry_after_s=7)

    result = make_client().send_customers(body_for("c-1"))

    assert result.outcome is SendOutcome.RETRY_NOT_SENT
    assert result.retry_after_s == 7.0
    assert set(result.ratelimit) == {"limit", "remaining", "reset"}


@live
def test_rate_limit_of_the_sandbox_is_reported_to_the_caller(make_client):
    sandbox_configure(rate_interval_s=30, hourly_cap=5)
    client = make_client()

    first = client.send_customers(body_for("c-1"))
    second = client.send_customers(body_for("c-2"))

    assert first.outcome is SendOutcome.ACCEPTED
    assert first.ratelimit["limit"] == 5
    assert first.ratelimit["remaining"] == 4
    assert second.status_code == 429
    assert second.outcome is SendOutcome.RETRY_NOT_SENT
    assert 28 <= second.retry_after_s <= 30
    assert sandbox_received_ids() == {"c-1"}


@live
def test_read_timeout_is_an_unknown_outcome_and_the_batch_did_arrive(make_client):
    sandbox_script(status_code=201, delay_s=1.0)
    client = make_client(read_timeout_s=0.3)

    result = client.send_customers(body_for("c-1"))

    assert result.status_code is None
    assert result.outcome is SendOutcome.RETRY_UNKNOWN
    assert result.error_class == "ReadTimeout"
    assert result.duration_s < 0.9
    # The answer was lost, not the request: at-least-once delivery sends it again.
    assert sandbox_received_ids() == {"c-1"}
    assert make_client().send_customers(body_for("c-1")).outcome is SendOutcome.ACCEPTED
    assert sandbox_arrivals()["duplicate_receipts"] == 1


@live
def test_total_deadline_cuts_a_slow_answer_short(make_client):
    client = make_client(read_timeout_s=5.0, total_timeout_s=0.5)
    client.ensure_token()
    sandbox_script(status_code=504, delay_s=1.5)

    started = time.monotonic()
    result = client.send_customers(body_for("c-1"))

    assert time.monotonic() - started < 1.2
    assert result.error_class == "TotalTimeout"
    assert result.outcome is SendOutcome.RETRY_UNKNOWN


@live
def test_connection_refused_is_retry_not_sent(make_client):
    client = make_client(base_url=f"http://127.0.0.1:{closed_port()}/api/storefront/v1")

    result = client.send_customers(body_for("c-1"))

    assert result.status_code is None
    assert result.outcome is SendOutcome.RETRY_NOT_SENT
    assert result.error_class == "ConnectError"
    # Nothing left: pacing has no request to keep the next one apart from.
    assert result.left_at is None


@live
def test_unreachable_token_endpoint_sends_nothing(make_client):
    client = make_client(auth_url=f"http://127.0.0.1:{closed_port()}/auth/authorize")

    result = client.send_customers(body_for("c-1"))

    assert result.outcome is SendOutcome.RETRY_NOT_SENT
    assert result.error_class == "ConnectError"
    assert "token request" in result.response_excerpt
    assert sandbox_arrivals()["requests"] == 0


@live
def test_refused_api_key_raises_auth_error_without_the_key(make_client):
    client = make_client(api_key="wrong-key-123456")

    with pytest.raises(MasivoAuthError) as caught:
        client.send_customers(body_for("c-1"))

    assert str(caught.value) == ERR_AUTH_STATUS % {"status": 401}
    assert caught.value.status_code == 401
    assert caught.value.is_transient is False
    assert "wrong-key-123456" not in repr(caught.value) + caught.value.response_excerpt
    assert sandbox_arrivals()["requests"] == 0


@live
def test_short_lived_token_is_refreshed_before_it_expires(make_client):
    sandbox_configure(token_lifetime_s=2)
    client = make_client()

    assert client.send_customers(body_for("c-1")).outcome is SendOutcome.ACCEPTED
    assert client.send_customers(body_for("c-2")).outcome is SendOutcome.ACCEPTED
    assert sandbox_arrivals()["tokens_issued"] == 1
    # Past 80% of the token's life, still before its end: time to fetch a new one.
    expires_at = SandboxTokenRequest.objects.get().expires_at.timestamp()
    time.sleep(max(0.0, expires_at - 0.3 - time.time()))
    result = client.send_customers(body_for("c-3"))

    assert result.outcome is SendOutcome.ACCEPTED
    assert result.token_refreshed is False
    assert sandbox_arrivals()["tokens_issued"] == 2
    assert SandboxRequest.objects.filter(status_code=401).count() == 0


@live
def test_token_is_shared_between_clients_through_the_cache(make_client):
    for number in range(3):
        client = make_client()
        assert client.send_customers(body_for(f"c-{number}")).outcome is SendOutcome.ACCEPTED

    assert sandbox_arrivals()["tokens_issued"] == 1


@live
def test_concurrent_clients_fetch_one_token_between_them(make_client):
    cache = LocMemCache("masivo-token-race", {})
    clients = [make_client(cache=cache) for _ in range(6)]
    start = threading.Barrier(len(clients))
    fetched: list[bool] = []

    def run(client):
        start.wait()
        fetched.append(client.ensure_token())

    threads = [threading.Thread(target=run, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=15)

    assert sorted(fetched) == [False] * 5 + [True]
    assert sandbox_arrivals()["token_requests"] == 1


@live
def test_a_401_drops_only_the_token_that_failed(make_client):
    client = make_client()
    client.ensure_token()
    stale = sandbox_token_issue(lifetime_s=600)

    client._forget_token(token=stale)

    assert client.ensure_token() is False
    assert sandbox_arrivals()["tokens_issued"] == 1


@live
def test_no_secret_in_reprs_excerpts_errors_or_logs(make_client, settings, caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "migrations_jobs.client"):
        caplog.set_level(logging.DEBUG, logger=name)
    api_key = settings.MASIVO_API_KEY
    client = make_client()
    sandbox_script(status_code=401)
    sandbox_script(status_code=422)
    refreshed = client.send_customers(body_for("c-1"))
    with pytest.raises(MasivoAuthError) as caught:
        make_client(api_key=f"{api_key}-wrong").send_customers(body_for("c-2"))
    issued = client.shared_token.entry()["token"]
    shown = "\n".join(
        [
            repr(client),
            repr(refreshed),
            str(caught.value),
            repr(caught.value),
            caught.value.response_excerpt,
            caplog.text,
        ]
    )

    assert refreshed.token_refreshed is True
    assert refreshed.status_code == 422
    assert any(r.name == "migrations_jobs.client" for r in caplog.records)
    assert issued not in shown
    assert api_key not in shown
    assert "eyJ" not in shown
    assert "Bearer" not in shown


def test_excerpt_of_an_answer_echoing_secrets_is_redacted(settings):
    settings.MASIVO_TOKEN = ""
    issued = sandbox_token_issue(lifetime_s=600, now=time.time())
    opaque = "opaque-token-0123456789"

    def echo(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/authorize"):
            return httpx.Response(200, json={"data": opaque})
        text = f"{request.headers['authorization']} key=super-secret-key jwt={issued} " * 40
        return httpx.Response(400, text=text)

    client = MasivoClient(
        base_url="http://masivo.test/api/storefront/v1",
        auth_url="http://masivo.test/auth/authorize",
        api_key="super-secret-key",
        cache=LocMemCache("masivo-echo", {}),
        transport=httpx.MockTransport(echo),
    )
    with client:
        result = client.send_customers(body_for("c-1"))

    assert result.outcome is SendOutcome.PERMANENT
    assert len(result.response_excerpt) == 500
    assert result.response_excerpt.startswith(f"Bearer {REDACTED} key={REDACTED} jwt={REDACTED}")
    for secret in (opaque, "super-secret-key", "eyJ"):
        assert secret not in result.response_excerpt
        assert secret not in repr(client)


# --- pure helpers -----------------------------------------------------------------------------


def test_redact_replaces_configured_secrets_and_jwts(settings):
    settings.MASIVO_API_KEY = "key-abcdef"
    settings.MASIVO_TOKEN = "static-tok-987"
    jwt = sandbox_token_issue(lifetime_s=60)

    text = redact(f"a key-abcdef b static-tok-987 c {jwt} d eyJhbGciOi")

    assert text == f"a {REDACTED} b {REDACTED} c {REDACTED} d {REDACTED}"


def test_backoff_grows_exponentially_up_to_the_cap():
    class Highest:
        def uniform(self, low: float, high: float) -> float:
            return high

    ceilings = [backoff_delay(attempt=n, base=2, cap=30, rng=Highest()) for n in range(1, 7)]

    assert ceilings == [2, 4, 8, 16, 30, 30]
    assert backoff_delay(attempt=10_000, base=2, cap=300, rng=Highest()) == 300


def test_backoff_is_fully_jittered():
    rng = random.Random(7)
    delays = [backoff_delay(attempt=4, base=1, cap=100, rng=rng) for _ in range(500)]

    assert all(0 <= d <= 8 for d in delays)
    assert min(delays) < 1
    assert max(delays) > 7


@pytest.mark.parametrize("attempt", [0, -1])
def test_backoff_refuses_attempts_below_one(attempt):
    with pytest.raises(ValueError, match="attempt"):
        backoff_delay(attempt=attempt, base=1, cap=10)


def test_retry_after_reads_seconds_and_http_dates():
    now = time.time()
    in_ninety = format_datetime(dt.datetime.now(tz=dt.UTC) + dt.timedelta(seconds=90), usegmt=True)

    assert retry_after_seconds(value="12") == 12.0
    assert retry_after_seconds(value=" 1.5 ") == 1.5
    assert 88 <= retry_after_seconds(value=in_ninety, now=now) <= 90
    assert retry_after_seconds(value="Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert retry_after_seconds(value="soon") is None
    assert retry_after_seconds(value=None) is None


def test_token_is_refreshed_a_margin_before_expiry_or_at_80_percent():
    assert token_refresh_at(expires_at=4600, now=1000, margin_s=300) == 4300
    assert token_refresh_at(expires_at=1002, now=1000, margin_s=300) == pytest.approx(1001.6)


def test_token_expiry_is_read_from_the_jwt_payload():
    jwt = sandbox_token_issue(lifetime_s=120, now=1_000_000)

    assert token_expiry(token=jwt) == 1_000_120
    assert token_expiry(token="not-a-jwt") is None
    assert token_expiry(token="a.b.c") is None


def test_unusable_base_url_is_permanent():
    client = MasivoClient(
        base_url="ftp://masivo.test/api/storefront/v1",
        token="static-token-value",
        cache=LocMemCache("masivo-ftp", {}),
    )
    with client:
        result = client.send_customers(body_for("c-1"))

    assert result.outcome is SendOutcome.PERMANENT
    assert result.error_class == "UnsupportedProtocol"
