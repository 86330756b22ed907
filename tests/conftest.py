from pathlib import Path

import pytest
from django.utils import translation

from migrations_jobs.sandbox.services import sandbox_reset
from tests.factories import BatchFactory, UserFactory

SAMPLES = Path(__file__).resolve().parent.parent / "docs" / "samples"


@pytest.fixture(autouse=True)
def _english_after_each_test():
    """Each test starts in English: a request in Spanish leaves Spanish active in the
    test's thread (the locale middleware activates the request's language, and nothing
    turns it off)."""
    yield
    translation.deactivate()


@pytest.fixture
def samples() -> Path:
    return SAMPLES


@pytest.fixture
def importer(db):
    """A staff user who may import files into batches (and save mapping profiles)."""
    return UserFactory(
        username="importer",
        perms=[
            "customers.import_stagingbatch",
            "customers.view_stagingbatch",
            "customers.add_stagingbatch",
            "customers.change_stagingbatch",
            "customers.view_stagedcustomer",
            "customers.change_stagedcustomer",
            "customers.add_mappingprofile",
            "customers.change_mappingprofile",
        ],
    )


@pytest.fixture
def approver(db):
    """A second staff user who may approve and submit batches."""
    return UserFactory(
        username="approver",
        perms=[
            "customers.approve_stagingbatch",
            "customers.submit_stagingbatch",
            "customers.view_stagingbatch",
            "customers.view_stagedcustomer",
        ],
    )


@pytest.fixture
def batch(importer):
    return BatchFactory(name="spring-migration", created_by=importer)


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
