from pathlib import Path

import pytest

from tests.factories import BatchFactory, UserFactory

SAMPLES = Path(__file__).resolve().parent.parent / "docs" / "samples"


@pytest.fixture
def samples() -> Path:
    return SAMPLES


@pytest.fixture
def importer(db):
    """A staff user who may import files into batches."""
    return UserFactory(
        username="importer",
        perms=[
            "customers.import_stagingbatch",
            "customers.view_stagingbatch",
            "customers.add_stagingbatch",
            "customers.change_stagingbatch",
            "customers.view_stagedcustomer",
            "customers.change_stagedcustomer",
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
