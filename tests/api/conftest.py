from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from tests.factories import UserFactory

SAMPLE_FILES = {
    "customers": "customers.csv",
    "balances": "balances.csv",
    "devices": "devices.csv",
    "metrics": "metrics.csv",
}


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def as_user(api):
    """``as_user(user)``: the API client, authenticated as ``user``."""

    def login(user) -> APIClient:
        api.force_authenticate(user)
        return api

    return login


@pytest.fixture
def nobody(db):
    """A staff user with no permission at all."""
    return UserFactory(username="nobody")


@pytest.fixture
def upload():
    """``upload(client, batch_id, kind, name, content)``: POST a file to the batch."""

    def post(client, batch_id: int, kind: str, name: str, content: bytes, **extra):
        return client.post(
            reverse("api:batch-files", args=[batch_id]),
            {"kind": kind, "file": SimpleUploadedFile(name, content), **extra},
            format="multipart",
        )

    return post


@pytest.fixture
def upload_sample(upload, samples: Path):
    """``upload_sample(client, batch_id, kind)``: POST one of docs/samples to the batch."""

    def post(client, batch_id: int, kind: str):
        name = SAMPLE_FILES[kind]
        return upload(client, batch_id, kind, name, (samples / name).read_bytes())

    return post
