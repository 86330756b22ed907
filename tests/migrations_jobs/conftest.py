import json
from collections.abc import Callable, Iterator

import pytest

from migrations_jobs.client import MasivoClient
from migrations_jobs.sandbox.services import sandbox_reset

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
def sandbox(db) -> None:
    """An empty sandbox configured from the settings."""
    sandbox_reset()


@pytest.fixture
def masivo(live_server, settings, transactional_db) -> str:
    """The sandbox served over loopback, and the MASIVO_* settings pointing at it."""
    settings.MASIVO_BASE_URL = f"{live_server.url}/sandbox/api/storefront/v1"
    settings.MASIVO_AUTH_URL = f"{live_server.url}/sandbox/auth/authorize"
    settings.MASIVO_API_KEY = settings.SANDBOX_API_KEY
    settings.MASIVO_TOKEN = ""
    settings.MASIVO_CONNECT_TIMEOUT_S = 2.0
    settings.MASIVO_READ_TIMEOUT_S = 5.0
    settings.MASIVO_TOTAL_TIMEOUT_S = 10.0
    settings.MASIVO_TOKEN_REFRESH_MARGIN_S = 300
    sandbox_reset()
    return live_server.url


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
