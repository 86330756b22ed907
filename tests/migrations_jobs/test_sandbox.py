"""The sandbox's endpoints through Django's test client (and over loopback where processes
must share its rate limit)."""

import json
import threading
import time

import httpx
import pytest
from django.urls import reverse

from migrations_jobs.client.tokens import token_expiry
from migrations_jobs.sandbox.intake import (
    ACCEPTED_MESSAGE,
    DETAIL_EMAIL_TAKEN,
    DETAIL_REJECTED,
    ERR_INVALID_ENTRY,
)
from migrations_jobs.sandbox.models import (
    SINGLETON_PK,
    SandboxConfig,
    SandboxCustomer,
    SandboxRateWindow,
    SandboxRequest,
    SandboxScriptedAnswer,
)
from migrations_jobs.sandbox.services import (
    DETAIL_BAD_API_KEY,
    DETAIL_NO_BEARER,
    ERR_UNKNOWN_FIELD,
    sandbox_arrivals,
    sandbox_configure,
    sandbox_received_ids,
    sandbox_reset,
    sandbox_script,
)
from migrations_jobs.sandbox.tokens import PROBLEM_EXPIRED, PROBLEM_SIGNATURE, sandbox_token_issue
from tests.migrations_jobs.conftest import body_for, body_of, customer

pytestmark = pytest.mark.usefixtures("sandbox")

AUTHORIZE = reverse("masivo_sandbox:authorize")
MIGRATE = reverse("masivo_sandbox:migrate")
RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


@pytest.fixture
def bearer() -> str:
    return f"Bearer {sandbox_token_issue(lifetime_s=600)}"


def post(client, body: bytes, *, bearer: str | None, content_type="application/json"):
    headers = {"Authorization": bearer} if bearer else {}
    return client.post(MIGRATE, data=body, content_type=content_type, headers=headers)


# --- auth -------------------------------------------------------------------------------------


def test_authorize_with_wrong_key_is_401_in_masivos_shape(client):
    response = client.get(AUTHORIZE, headers={"x-api-key": "not-the-key"})

    assert response.status_code == 401
    assert response.json() == {"error": "Unauthorized", "details": DETAIL_BAD_API_KEY}
    assert sandbox_arrivals()["token_requests"] == 1
    assert sandbox_arrivals()["tokens_issued"] == 0


def test_authorize_without_key_is_401(client):
    assert client.get(AUTHORIZE).status_code == 401


def test_authorize_answers_a_jwt_living_the_configured_lifetime(client, settings):
    sandbox_configure(token_lifetime_s=120)
    before = time.time()

    response = client.get(AUTHORIZE, headers={"x-api-key": settings.SANDBOX_API_KEY})

    assert response.status_code == 200
    token = response.json()["data"]
    assert token.startswith("eyJ")
    assert before + 120 <= token_expiry(token=token) <= time.time() + 121
    assert post(client, body_for("c-1"), bearer=f"Bearer {token}").status_code == 201


# --- migrate: refusals ------------------------------------------------------------------------


def test_migrate_without_token_is_401(client):
    response = post(client, body_for("c-1"), bearer=None)

    assert response.status_code == 401
    assert response.json() == {"error": "Unauthorized", "details": DETAIL_NO_BEARER}
    assert all(name in response for name in RATE_HEADERS)
    assert sandbox_received_ids() == set()


def test_migrate_with_expired_token_is_401(client):
    expired = sandbox_token_issue(lifetime_s=60, now=time.time() - 120)

    response = post(client, body_for("c-1"), bearer=f"Bearer {expired}")

    assert response.status_code == 401
    assert response.json()["details"] == PROBLEM_EXPIRED


def test_migrate_with_forged_token_is_401(client, bearer):
    header, payload, signature = bearer.removeprefix("Bearer ").split(".")
    forged = f"{header}.{payload}.{signature[:-2]}AA"

    response = post(client, body_for("c-1"), bearer=f"Bearer {forged}")

    assert response.status_code == 401
    assert response.json()["details"] == PROBLEM_SIGNATURE


def test_more_than_1000_customers_is_413(client, bearer):
    body = body_for(*(f"c-{n}" for n in range(1001)))

    response = post(client, body, bearer=bearer)

    assert response.status_code == 413
    assert set(response.json()) == {"error", "details"}
    assert sandbox_received_ids() == set()


def test_body_that_is_not_json_is_400(client, bearer):
    response = post(client, b'{"customers": [', bearer=bearer)

    assert response.status_code == 400
    assert set(response.json()) == {"error", "details"}


def test_nan_is_not_json(client, bearer):
    body = b'{"customers": [{"id": "c-1", "metadata": {"x": NaN}}]}'

    assert post(client, body, bearer=bearer).status_code == 400


def test_body_that_is_not_declared_json_is_415(client, bearer):
    assert (
        post(client, body_for("c-1"), bearer=bearer, content_type="text/plain").status_code == 415
    )


def test_contract_violation_is_422_naming_customer_and_field(client, bearer):
    body = body_of([customer("c-1"), customer("c-2", email="not-an-email")])

    response = post(client, body, bearer=bearer)

    assert response.status_code == 422
    answer = response.json()
    assert answer["error"] == ERR_INVALID_ENTRY
    assert "c-2" in answer["details"]
    assert "email" in answer["details"]
    assert "c-1" not in answer["details"]
    assert sandbox_received_ids() == set()


def test_null_is_a_contract_violation(client, bearer):
    body = body_of([customer("c-1", country=None)])

    response = post(client, body, bearer=bearer)

    assert response.status_code == 422
    assert "country" in response.json()["details"]


def test_date_time_without_z_is_a_contract_violation(client, bearer):
    body = body_of([customer("c-1", registration_date="2023-11-07T05:31:56+00:00")])

    response = post(client, body, bearer=bearer)

    assert response.status_code == 422
    assert "registration_date" in response.json()["details"]


def test_email_of_another_id_fails_the_whole_request_without_naming_it(client, bearer):
    assert post(client, body_for("c-1"), bearer=bearer).status_code == 201
    body = body_of([customer("c-2"), customer("c-3", email="C-1@example.com")])

    response = post(client, body, bearer=bearer)

    assert response.status_code == 422
    assert response.json() == {"error": ERR_INVALID_ENTRY, "details": DETAIL_EMAIL_TAKEN}
    assert sandbox_received_ids() == {"c-1"}


def test_one_email_for_two_ids_in_one_request_is_refused(client, bearer):
    body = body_of(
        [customer("c-1", email="same@example.com"), customer("c-2", email="Same@example.com")]
    )

    response = post(client, body, bearer=bearer)

    assert response.status_code == 422
    assert response.json()["error"] == ERR_INVALID_ENTRY
    assert "email" in response.json()["details"]
    assert sandbox_received_ids() == set()


def test_rejected_id_fails_the_whole_request_without_naming_it(client, bearer):
    sandbox_configure(reject_ids=["c-bad"])

    response = post(client, body_for("c-1", "c-bad", "c-3"), bearer=bearer)

    assert response.status_code == 422
    assert response.json() == {"error": ERR_INVALID_ENTRY, "details": DETAIL_REJECTED}
    assert post(client, body_for("c-1", "c-3"), bearer=bearer).status_code == 201
    assert sandbox_received_ids() == {"c-1", "c-3"}


# --- migrate: acceptance and arrivals ---------------------------------------------------------


def test_accepted_request_is_201_with_rate_limit_headers(client, bearer):
    response = post(client, body_for("c-1", "c-2"), bearer=bearer)

    assert response.status_code == 201
    assert response.json() == {"message": ACCEPTED_MESSAGE}
    assert all(name in response for name in RATE_HEADERS)
    record = SandboxRequest.objects.get()
    assert (record.is_accepted, record.customer_count, record.new_count) == (True, 2, 2)


def test_sending_an_accepted_customer_again_counts_a_duplicate(client, bearer):
    post(client, body_for("c-1", "c-2"), bearer=bearer)
    post(client, body_for("c-2", "c-3"), bearer=bearer)
    post(client, body_of([customer("c-2", email="new-c2@example.com")]), bearer=bearer)

    arrivals = sandbox_arrivals()

    assert arrivals["accepted_requests"] == 3
    assert arrivals["customers"] == 3
    assert arrivals["receipts"] == 5
    assert arrivals["duplicate_receipts"] == 2
    c2 = SandboxCustomer.objects.get(legacy_id="c-2")
    assert (c2.times_received, c2.email) == (3, "new-c2@example.com")


def test_a_1000_customer_request_is_accepted_in_bulk(client, bearer, django_assert_max_num_queries):
    body = body_for(*(f"c-{n:04d}" for n in range(1000)))

    # A handful of statements, not one per customer (SQLite batches inserts by its
    # parameter limit).
    with django_assert_max_num_queries(30):
        response = post(client, body, bearer=bearer)

    assert response.status_code == 201
    assert SandboxCustomer.objects.count() == 1000


# --- rate limit -------------------------------------------------------------------------------


def test_second_request_within_the_interval_is_429_with_retry_after(client, bearer):
    sandbox_configure(rate_interval_s=5, hourly_cap=0)

    first = post(client, body_for("c-1"), bearer=bearer)
    second = post(client, body_for("c-2"), bearer=bearer)

    assert first.status_code == 201
    assert second.status_code == 429
    assert set(second.json()) == {"error", "details"}
    assert 4 <= int(second["Retry-After"]) <= 5
    assert second["X-RateLimit-Limit"] == "720"
    assert second["X-RateLimit-Remaining"] == "719"
    assert 3595 <= int(second["X-RateLimit-Reset"]) <= 3600
    assert sandbox_received_ids() == {"c-1"}


def test_hourly_cap_refuses_until_the_window_ends(client, bearer):
    sandbox_configure(hourly_cap=2)

    statuses = [post(client, body_for(f"c-{n}"), bearer=bearer).status_code for n in range(3)]
    last = post(client, body_for("c-9"), bearer=bearer)

    assert statuses == [201, 201, 429]
    assert last.status_code == 429
    assert last["X-RateLimit-Remaining"] == "0"
    assert 3590 <= int(last["Retry-After"]) <= 3600


@pytest.mark.django_db(transaction=True)
def test_rate_limit_holds_across_concurrent_connections(live_server):
    sandbox_configure(rate_interval_s=60)
    # An existing window row: the first request's insert would otherwise serialize them.
    SandboxRateWindow.objects.create(pk=SINGLETON_PK)
    url = f"{live_server.url}{MIGRATE}"
    headers = {
        "Authorization": f"Bearer {sandbox_token_issue(lifetime_s=600)}",
        "Content-Type": "application/json",
    }
    start = threading.Barrier(20)
    statuses: list[int] = []

    def send(number: int) -> None:
        start.wait()
        statuses.append(
            httpx.post(
                url, content=body_for(f"c-{number}"), headers=headers, timeout=10
            ).status_code
        )

    threads = [threading.Thread(target=send, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert sorted(statuses) == [201] + [429] * 19
    assert len(sandbox_received_ids()) == 1


# --- faults -----------------------------------------------------------------------------------


def test_scripted_answers_are_consumed_in_order(client, bearer):
    sandbox_script(status_code=503, retry_after_s=3)
    sandbox_script(status_code=201)
    sandbox_script(status_code=400)

    answers = [post(client, body_for(f"c-{n}"), bearer=bearer) for n in range(4)]

    assert [a.status_code for a in answers] == [503, 201, 400, 201]
    assert answers[0]["Retry-After"] == "3"
    assert answers[2].json()["error"] == "Bad Request"
    assert sandbox_received_ids() == {"c-1", "c-3"}
    assert not SandboxScriptedAnswer.objects.filter(consumed_at__isnull=True).exists()


def test_slow_scripted_201_is_processed_then_answered_late(client, bearer):
    sandbox_script(status_code=201, delay_s=0.3)

    started = time.monotonic()
    response = post(client, body_for("c-1"), bearer=bearer)

    assert response.status_code == 201
    assert time.monotonic() - started >= 0.3
    assert SandboxRequest.objects.get().duration_s >= 0.3


def test_injected_500s_process_nothing(client, bearer):
    sandbox_configure(fail_500_rate=1.0)

    response = post(client, body_for("c-1"), bearer=bearer)

    assert response.status_code == 500
    assert sandbox_received_ids() == set()


def test_injected_429s_carry_the_configured_retry_after(client, bearer):
    sandbox_configure(fail_429_rate=1.0, retry_after_s=4)

    response = post(client, body_for("c-1"), bearer=bearer)

    assert response.status_code == 429
    assert response["Retry-After"] == "4"
    assert sandbox_received_ids() == set()


def test_injected_slow_answers_are_processed(client, bearer):
    sandbox_configure(slow_rate=1.0, slow_s=0.2)

    started = time.monotonic()
    response = post(client, body_for("c-1"), bearer=bearer)

    assert response.status_code == 201
    assert time.monotonic() - started >= 0.2
    assert sandbox_received_ids() == {"c-1"}


# --- configuration ----------------------------------------------------------------------------


def test_configuration_starts_from_settings(settings):
    settings.SANDBOX_HOURLY_CAP = 250
    settings.SANDBOX_RATE_INTERVAL_S = 5.0
    sandbox_reset()

    config = SandboxConfig.current()

    assert (config.hourly_cap, config.rate_interval_s, config.reject_ids) == (250, 5.0, [])


def test_configure_refuses_unknown_fields():
    with pytest.raises(ValueError, match="colour") as caught:
        sandbox_configure(colour="blue")

    assert str(caught.value) == ERR_UNKNOWN_FIELD % {"names": "colour"}


def test_configure_validates_values():
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        sandbox_configure(fail_500_rate=1.5)
    with pytest.raises(ValidationError):
        sandbox_configure(reject_ids="c-1")


def test_reset_forgets_everything(client, bearer, settings):
    sandbox_configure(hourly_cap=9)
    sandbox_script(status_code=500)
    post(client, body_for("c-1"), bearer=bearer)
    post(client, body_for("c-1"), bearer=bearer)

    sandbox_reset()

    assert sandbox_arrivals() == {
        "requests": 0,
        "status_counts": {},
        "accepted_requests": 0,
        "customers": 0,
        "receipts": 0,
        "duplicate_receipts": 0,
        "token_requests": 0,
        "tokens_issued": 0,
    }
    assert SandboxConfig.current().hourly_cap == settings.SANDBOX_HOURLY_CAP
    assert json.loads(post(client, body_for("c-1"), bearer=bearer).content)["message"]


# --- admin ------------------------------------------------------------------------------------


def test_admin_shows_configuration_and_read_only_records(admin_client, client, bearer):
    post(client, body_for("c-1"), bearer=bearer)
    config = SandboxConfig.current()

    pages = [
        reverse("admin:masivo_sandbox_sandboxconfig_change", args=[config.pk]),
        reverse("admin:masivo_sandbox_sandboxrequest_changelist"),
        reverse("admin:masivo_sandbox_sandboxcustomer_changelist"),
        reverse("admin:masivo_sandbox_sandboxtokenrequest_changelist"),
        reverse("admin:masivo_sandbox_sandboxscriptedanswer_add"),
    ]

    assert [admin_client.get(page).status_code for page in pages] == [200] * 5
    record = SandboxRequest.objects.get()
    assert (
        admin_client.get(
            reverse("admin:masivo_sandbox_sandboxrequest_delete", args=[record.pk])
        ).status_code
        == 403
    )
    assert admin_client.get(reverse("admin:masivo_sandbox_sandboxconfig_add")).status_code == 403
