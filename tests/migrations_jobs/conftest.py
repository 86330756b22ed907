import json
from collections.abc import Callable, Iterator

import pytest

from migrations_jobs.client import MasivoClient
from tests.worker import broker_purge

REGISTERED = "2023-11-07T05:31:56Z"


def customer(legacy_id: str, *, email: str | None = None, **fields) -> dict:
    """A customer the contract accepts."""
    return {
        "id": legacy_id,
        "name": f"Customer {legacy_id}",
        "email": email or f"{legacy_id}@example.com",
        "registration_date": REGISTERED,
        **fields,
    }


def body_of(customers: list[dict]) -> bytes:
    return json.dumps({"customers": customers}).encode()


def body_for(*ids: str) -> bytes:
    return body_of([customer(legacy_id) for legacy_id in ids])


@pytest.fixture
def make_client(masivo) -> Iterator[Callable[..., MasivoClient]]:
    """Builds clients on the current settings; none finds a token cached by another test."""
    made: list[MasivoClient] = []

    def make(**overrides) -> MasivoClient:
        client = MasivoClient(**overrides)
        made.append(client)
        return client

    make().clear_cached_token()
    yield make
    for client in made:
        client.clear_cached_token()
        client.close()


@pytest.fixture
def quick(settings):
    """No pacing, immediate retries: what a test needs to run a job in a blink."""
    settings.MIGRATION_MIN_INTERVAL_S = 0
    settings.MIGRATION_HOURLY_CAP = 0
    settings.MIGRATION_BACKOFF_BASE_S = 0
    settings.MIGRATION_BACKOFF_MAX_S = 0
    settings.MIGRATION_MAX_IN_FLIGHT = 2
    settings.MIGRATION_LEASE_S = 30
    return settings


@pytest.fixture
def sandboxed(masivo, quick):
    """The sandbox over loopback; jobs started here publish real messages: drop them after."""
    yield masivo
    broker_purge()
