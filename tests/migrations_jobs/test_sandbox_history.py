"""The sandbox's history endpoints, customers/migrate/transactions and /events: through
Django's test client, and over loopback where the shared rate limit is at stake."""

import json
import time

import httpx
import pytest
from django.urls import reverse

from migrations_jobs.sandbox.history import (
    ACCEPTED_MESSAGES,
    DETAIL_HISTORY_FIRST,
    sandbox_history_arrivals,
    sandbox_history_ids,
)
from migrations_jobs.sandbox.intake import DETAIL_REJECTED, ERR_INVALID_ENTRY
from migrations_jobs.sandbox.models import (
    SandboxConfig,
    SandboxHistoryEntry,
    SandboxRequest,
)
from migrations_jobs.sandbox.services import (
    DETAIL_NO_BEARER,
    sandbox_arrivals,
    sandbox_configure,
    sandbox_reset,
    sandbox_script,
)
from migrations_jobs.sandbox.tokens import sandbox_token_issue
from tests.migrations_jobs.conftest import body_for

pytestmark = pytest.mark.usefixtures("sandbox")

MIGRATE = reverse("masivo_sandbox:migrate")
TRANSACTIONS = reverse("masivo_sandbox:migrate_transactions")
EVENTS = reverse("masivo_sandbox:migrate_events")
ENDPOINTS = {"transactions": TRANSACTIONS, "events": EVENTS}
RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
REWARD = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
Kind = SandboxRequest.Kind


def earned(amount: int = 150) -> dict:
    return {"reward_id": REWARD, "type": "ACCUMULATION", "amount": amount}


def spent(amount: int = -27) -> dict:
    return {"reward_id": REWARD, "type": "REDEMPTION", "amount": amount}


def purchase(**fields) -> dict:
    return {
        "type": "PURCHASE",
        "fulfilled": True,
        "issued_at": "2023-01-02T10:00:00Z",
        "resolved_at": "2023-01-02T10:00:05Z",
        "order": {"purchase_id": "ORD-77", "value": 150.0, "payment_method": "CREDIT"},
        **fields,
    }


def history_body(kind: str, entries: dict[str, list[dict]]) -> bytes:
    return json.dumps(
        {"customers": [{"id": legacy_id, kind: items} for legacy_id, items in entries.items()]}
    ).encode()


def body_of_kind(kind: str, *ids: str) -> bytes:
    """A valid body of ``kind`` for ``ids``: two transactions, or one event, each."""
    items = [earned(), spent()] if kind == "transactions" else [purchase()]
    return history_body(kind, dict.fromkeys(ids, items))


@pytest.fixture
def bearer() -> str:
    return f"Bearer {sandbox_token_issue(lifetime_s=600)}"


def post(client, url: str, body: bytes, *, bearer: str | None):
    headers = {"Authorization": bearer} if bearer else {}
    return client.post(url, data=body, content_type="application/json", headers=headers)


def post_customers(client, bearer: str, *ids: str) -> None:
    assert post(client, MIGRATE, body_for(*ids), bearer=bearer).status_code == 201


# --- acceptance -----------------------------------------------------------------------------------


def test_transactions_are_201_and_recorded_per_customer(client, bearer):
    post_customers(client, bearer, "c-1", "c-2")
    body = history_body("transactions", {"c-1": [earned(), spent()], "c-2": [earned(5)]})

    response = post(client, TRANSACTIONS, body, bearer=bearer)

    assert response.status_code == 201
    assert response.json() == {"message": "Customer transactions enqueued successfully"}
    assert all(name in response for name in RATE_HEADERS)
    record = SandboxRequest.objects.get(kind=Kind.TRANSACTIONS)
    assert (record.is_accepted, record.customer_count, record.item_count) == (True, 2, 3)
    entries = SandboxHistoryEntry.objects.order_by("legacy_id")
    assert [(e.legacy_id, e.kind, e.item_count, e.has_customer, e.request_id) for e in entries] == [
        ("c-1", "transactions", 2, True, record.pk),
        ("c-2", "transactions", 1, True, record.pk),
    ]


def test_events_are_201_and_recorded_per_customer(client, bearer):
    post_customers(client, bearer, "c-1")
    body = history_body("events", {"c-1": [purchase(), purchase(fulfilled=False)]})

    response = post(client, EVENTS, body, bearer=bearer)

    assert response.status_code == 201
    assert response.json() == {"message": ACCEPTED_MESSAGES[Kind.EVENTS]}
    assert sandbox_history_arrivals(kind="events") == {
        "requests": 1,
        "status_counts": {201: 1},
        "accepted_requests": 1,
        "customers": 1,
        "entries": 1,
        "items": 2,
        "customers_received_again": 0,
        "before_customer": 0,
    }
    assert sandbox_history_ids(kind="events") == {"c-1"}
    assert sandbox_history_ids(kind="transactions") == set()


def test_history_counts_apart_from_customers(client, bearer):
    post_customers(client, bearer, "c-1", "c-2")
    post(client, TRANSACTIONS, body_of_kind("transactions", "c-1"), bearer=bearer)
    post(client, EVENTS, body_of_kind("events", "c-1", "c-2"), bearer=bearer)

    customers = sandbox_arrivals()

    assert (customers["requests"], customers["accepted_requests"], customers["receipts"]) == (
        1,
        1,
        2,
    )
    assert sandbox_history_arrivals(kind="transactions")["items"] == 2
    assert sandbox_history_arrivals(kind="events")["customers"] == 2


def test_history_before_its_customer_is_accepted_and_noted_by_default(client, bearer):
    assert SandboxConfig.current().refuse_history_first is False

    response = post(client, TRANSACTIONS, body_of_kind("transactions", "c-9"), bearer=bearer)

    assert response.status_code == 201
    assert sandbox_history_arrivals(kind="transactions")["before_customer"] == 1
    assert SandboxHistoryEntry.objects.get().has_customer is False


def test_a_customers_transactions_sent_twice_are_counted(client, bearer):
    post_customers(client, bearer, "c-1")
    for _attempt in range(2):
        post(client, TRANSACTIONS, body_of_kind("transactions", "c-1"), bearer=bearer)

    arrivals = sandbox_history_arrivals(kind="transactions")

    assert (arrivals["entries"], arrivals["customers"], arrivals["customers_received_again"]) == (
        2,
        1,
        1,
    )


# --- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["transactions", "events"])
def test_history_without_token_is_401(client, kind):
    response = post(client, ENDPOINTS[kind], body_of_kind(kind, "c-1"), bearer=None)

    assert response.status_code == 401
    assert response.json() == {"error": "Unauthorized", "details": DETAIL_NO_BEARER}
    assert SandboxRequest.objects.get().kind == kind
    assert not SandboxHistoryEntry.objects.exists()


def test_bad_transaction_is_422_naming_customer_item_and_field(client, bearer):
    body = history_body("transactions", {"c-1": [earned()], "c-2": [earned(), spent(27)]})

    response = post(client, TRANSACTIONS, body, bearer=bearer)

    assert response.status_code == 422
    answer = response.json()
    assert answer["error"] == ERR_INVALID_ENTRY
    assert answer["details"].startswith('customers[1] (id "c-2"): transactions[1].amount: ')
    assert "negative" in answer["details"]
    assert "c-1" not in answer["details"]
    record = SandboxRequest.objects.get()
    assert (record.kind, record.reason, record.customer_count) == (
        "transactions",
        "invalid_entry",
        2,
    )
    assert not SandboxHistoryEntry.objects.exists()


def test_event_without_fulfilled_is_422(client, bearer):
    event = purchase()
    del event["fulfilled"]

    response = post(client, EVENTS, history_body("events", {"c-1": [event]}), bearer=bearer)

    assert response.status_code == 422
    assert 'customers[0] (id "c-1"): events[0].fulfilled: Required' in response.json()["details"]


def test_bad_nested_order_field_is_named_by_its_path(client, bearer):
    event = purchase(order={"products": [{"sku": "A"}, {"sku": 5}]})

    response = post(client, EVENTS, history_body("events", {"c-1": [event]}), bearer=bearer)

    assert response.status_code == 422
    assert "events[0].order.products[1].sku" in response.json()["details"]


def test_same_customer_twice_in_one_request_is_422(client, bearer):
    body = json.dumps(
        {
            "customers": [
                {"id": "c-1", "events": [purchase()]},
                {"id": "c-1", "events": [purchase()]},
            ]
        }
    ).encode()

    response = post(client, EVENTS, body, bearer=bearer)

    assert response.status_code == 422
    assert "c-1" in response.json()["details"]


def test_an_empty_entry_is_422(client, bearer):
    response = post(client, TRANSACTIONS, history_body("transactions", {"c-1": []}), bearer=bearer)

    assert response.status_code == 422
    assert "transactions" in response.json()["details"]


def test_too_many_items_in_all_is_422_for_the_request(client, bearer, settings):
    settings.MASIVO_EVENTS_MAX_ITEMS = 2

    response = post(client, EVENTS, body_of_kind("events", "c-1", "c-2", "c-3"), bearer=bearer)

    assert response.status_code == 422
    assert response.json() == {
        "error": ERR_INVALID_ENTRY,
        "details": "customers: A request takes at most 2 events in all; this one has 3.",
    }


def test_too_many_customers_is_422(client, bearer, settings):
    settings.MASIVO_TX_MAX_CUSTOMERS = 2

    response = post(
        client, TRANSACTIONS, body_of_kind("transactions", "c-1", "c-2", "c-3"), bearer=bearer
    )

    assert response.status_code == 422
    assert response.json()["error"] == ERR_INVALID_ENTRY


def test_body_that_is_not_json_is_400(client, bearer):
    assert post(client, EVENTS, b'{"customers": [', bearer=bearer).status_code == 400


def test_rejected_id_fails_history_without_naming_it(client, bearer):
    sandbox_configure(reject_ids=["c-bad"])

    response = post(client, EVENTS, body_of_kind("events", "c-1", "c-bad"), bearer=bearer)

    assert response.status_code == 422
    assert response.json() == {"error": ERR_INVALID_ENTRY, "details": DETAIL_REJECTED}


# --- history before its customer --------------------------------------------------------------


@pytest.mark.parametrize("kind", ["transactions", "events"])
def test_switched_on_history_before_its_customer_is_422_naming_the_ids(client, bearer, kind):
    sandbox_configure(refuse_history_first=True)
    post_customers(client, bearer, "c-1")

    refused = post(client, ENDPOINTS[kind], body_of_kind(kind, "c-1", "c-2", "c-3"), bearer=bearer)

    assert refused.status_code == 422
    assert refused.json() == {
        "error": ERR_INVALID_ENTRY,
        "details": DETAIL_HISTORY_FIRST % {"ids": "c-2, c-3"},
    }
    assert SandboxRequest.objects.get(kind=kind).reason == "history_first"
    assert not SandboxHistoryEntry.objects.exists()
    post_customers(client, bearer, "c-2", "c-3")
    accepted = post(client, ENDPOINTS[kind], body_of_kind(kind, "c-1", "c-2", "c-3"), bearer=bearer)
    assert accepted.status_code == 201
    assert sandbox_history_ids(kind=kind) == {"c-1", "c-2", "c-3"}


def test_the_switch_starts_from_its_setting(settings):
    settings.SANDBOX_REFUSE_HISTORY_FIRST = True
    sandbox_reset()

    assert SandboxConfig.current().refuse_history_first is True


# --- one rate limit for customers, transactions and events ------------------------------------


def test_history_within_the_interval_of_a_customers_request_is_429(client, bearer):
    sandbox_configure(rate_interval_s=5, hourly_cap=0)

    first = post(client, MIGRATE, body_for("c-1"), bearer=bearer)
    transactions = post(client, TRANSACTIONS, body_of_kind("transactions", "c-1"), bearer=bearer)
    events = post(client, EVENTS, body_of_kind("events", "c-1"), bearer=bearer)

    assert [first.status_code, transactions.status_code, events.status_code] == [201, 429, 429]
    assert 4 <= int(transactions["Retry-After"]) <= 5
    assert set(transactions.json()) == {"error", "details"}
    assert transactions["X-RateLimit-Remaining"] == "719"
    assert not SandboxHistoryEntry.objects.exists()


def test_customers_within_the_interval_of_a_history_request_are_429(client, bearer):
    sandbox_configure(rate_interval_s=5, hourly_cap=0)

    events = post(client, EVENTS, body_of_kind("events", "c-1"), bearer=bearer)
    customers = post(client, MIGRATE, body_for("c-1"), bearer=bearer)

    assert (events.status_code, customers.status_code) == (201, 429)


def test_the_hourly_cap_counts_the_three_endpoints_together(client, bearer):
    sandbox_configure(hourly_cap=2)

    statuses = [
        post(client, MIGRATE, body_for("c-1"), bearer=bearer).status_code,
        post(client, TRANSACTIONS, body_of_kind("transactions", "c-1"), bearer=bearer).status_code,
        post(client, EVENTS, body_of_kind("events", "c-1"), bearer=bearer).status_code,
    ]

    assert statuses == [201, 201, 429]


@pytest.mark.django_db(transaction=True)
def test_one_limiter_over_loopback(live_server):
    sandbox_configure(rate_interval_s=60)
    headers = {
        "Authorization": f"Bearer {sandbox_token_issue(lifetime_s=600)}",
        "Content-Type": "application/json",
    }

    def send(path: str, body: bytes) -> httpx.Response:
        return httpx.post(f"{live_server.url}{path}", content=body, headers=headers, timeout=10)

    customers = send(MIGRATE, body_for("c-1"))
    transactions = send(TRANSACTIONS, body_of_kind("transactions", "c-1"))
    events = send(EVENTS, body_of_kind("events", "c-1"))

    assert [customers.status_code, transactions.status_code, events.status_code] == [201, 429, 429]
    assert int(transactions.headers["Retry-After"]) >= 59
    assert sandbox_history_arrivals(kind="transactions")["status_counts"] == {429: 1}


# --- faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["transactions", "events"])
def test_injected_500s_process_no_history(client, bearer, kind):
    sandbox_configure(fail_500_rate=1.0)

    response = post(client, ENDPOINTS[kind], body_of_kind(kind, "c-1"), bearer=bearer)

    assert response.status_code == 500
    assert set(response.json()) == {"error", "details"}
    assert not SandboxHistoryEntry.objects.exists()


def test_injected_429s_carry_the_configured_retry_after(client, bearer):
    sandbox_configure(fail_429_rate=1.0, retry_after_s=4)

    response = post(client, TRANSACTIONS, body_of_kind("transactions", "c-1"), bearer=bearer)

    assert response.status_code == 429
    assert response["Retry-After"] == "4"


def test_injected_slow_answers_are_processed(client, bearer):
    sandbox_configure(slow_rate=1.0, slow_s=0.2)

    started = time.monotonic()
    response = post(client, EVENTS, body_of_kind("events", "c-1"), bearer=bearer)

    assert response.status_code == 201
    assert time.monotonic() - started >= 0.2
    assert sandbox_history_ids(kind="events") == {"c-1"}


def test_scripted_answers_are_shared_by_every_endpoint(client, bearer):
    sandbox_script(status_code=503, retry_after_s=3)
    sandbox_script(status_code=422)

    transactions = post(client, TRANSACTIONS, body_of_kind("transactions", "c-1"), bearer=bearer)
    events = post(client, EVENTS, body_of_kind("events", "c-1"), bearer=bearer)
    again = post(client, TRANSACTIONS, body_of_kind("transactions", "c-1"), bearer=bearer)

    assert [transactions.status_code, events.status_code, again.status_code] == [503, 422, 201]
    assert transactions["Retry-After"] == "3"
    assert events.json()["error"] == ERR_INVALID_ENTRY


# --- reset and admin --------------------------------------------------------------------------


def test_reset_forgets_the_history(client, bearer):
    post(client, EVENTS, body_of_kind("events", "c-1"), bearer=bearer)

    sandbox_reset()

    assert sandbox_history_arrivals(kind="events")["requests"] == 0
    assert not SandboxHistoryEntry.objects.exists()


def test_admin_shows_the_history_and_the_switch(admin_client, client, bearer):
    post(client, EVENTS, body_of_kind("events", "c-1"), bearer=bearer)
    config = SandboxConfig.current()

    config_page = admin_client.get(
        reverse("admin:masivo_sandbox_sandboxconfig_change", args=[config.pk])
    )
    pages = [
        reverse("admin:masivo_sandbox_sandboxhistoryentry_changelist"),
        reverse("admin:masivo_sandbox_sandboxrequest_changelist") + "?kind=events",
    ]

    assert config_page.status_code == 200
    assert b'name="refuse_history_first"' in config_page.content
    assert [admin_client.get(page).status_code for page in pages] == [200, 200]
    entry = SandboxHistoryEntry.objects.get()
    delete = reverse("admin:masivo_sandbox_sandboxhistoryentry_delete", args=[entry.pk])
    assert admin_client.get(delete).status_code == 403
