"""The API answers as its schema says, whatever a client sends: schemathesis generates
requests from the served OpenAPI schema (valid ones, and invalid ones it expects refused)
and checks every answer with all its checks (no server error, a documented status and
media type, a body of the documented shape, valid data accepted and invalid data refused,
credentials required).

It runs twice over every operation: as an approver (the reviewer role, with a DRF token)
and as an authenticated user with no permission at all. The data is real: batches in each
status, a job with failed customers, a held job, a mapping profile; generated ids are
mixed with theirs so that approvals, submissions and deletions happen. Tasks a service
schedules run after commit, and a test's transaction never commits: no job is started.

Bounded and reproducible: a fixed seed, ``MAX_EXAMPLES`` per operation and phase, no
example database (``SCHEMA_FUZZ_EXAMPLES`` and ``SCHEMA_FUZZ_SEED`` change them). On
PostgreSQL only, the production database (the suite's run on SQLite skips it): the two runs
take about two and a half minutes on 2 cores. The figures are in docs/RELIABILITY.md.
"""

from __future__ import annotations

import os
import time

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token

from customers.services import batch_approve, batch_validate
from customers.services.mappings import profile_save
from migrations_jobs.management.commands.operator_create import role_group
from migrations_jobs.models import MigrationJob
from migrations_jobs.services import job_start
from tests.api.test_jobs import job_fail
from tests.factories import BatchFactory, CustomerFactory, UserFactory
from tests.worker import mark_validated

ON_POSTGRESQL = django_settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
NOT_HERE = "schema fuzzing runs on the PostgreSQL configuration"
pytestmark = pytest.mark.django_db

MAX_EXAMPLES = int(os.environ.get("SCHEMA_FUZZ_EXAMPLES", "10"))
SEED = int(os.environ.get("SCHEMA_FUZZ_SEED", "18"))

# Operations that apply rules the schema cannot state, and answer 400 for a request the
# schema allows (each says so in its 400): legacy ids must be staged in the batch, a time
# zone must exist, a batch's name must be free, a file's rows and a mapping's columns must
# be right. Everywhere else a valid request is never refused.
BUSINESS_RULES = [
    "POST /api/batches/",
    "POST /api/batches/{batch_id}/files/",
    "POST /api/batches/{batch_id}/exclusions/",
    "POST /api/batches/{batch_id}/send-again/",
    "POST /api/mappings/",
    "PUT /api/mappings/{profile_id}/",
]

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
        "operations": [
            {
                "include-name": BUSINESS_RULES,
                "checks": {
                    "positive_data_acceptance": {
                        "expected-statuses": ["2xx", "3xx", "400", "401", "403", "404", "409"]
                    }
                },
            }
        ],
    }
)

# Ids of the objects the world fixture made, by path parameter: a generated id is replaced
# by one of these about half of the time.
KNOWN: dict[str, list[int]] = {}
TALLY: dict[str, list[float]] = {"approver": [0, 0.0], "outsider": [0, 0.0]}


def known_ids(context, strategy):
    names = [parameter.name for parameter in context.operation.path_parameters]
    known = st.integers(min_value=0, max_value=99).map(
        lambda pick: {name: KNOWN[name][pick % len(KNOWN[name])] for name in names}
    )
    return st.one_of(strategy, known)


def served_schema():
    """The schema ``/api/schema/`` serves (``test_the_fuzzed_schema_is_the_one_served``),
    called in process through the WSGI application."""
    loaded = schemathesis.openapi.from_dict(
        SchemaGenerator().get_schema(request=None, public=True), config=CONFIG
    )
    loaded.app = get_wsgi_application()
    loaded.hook("before_generate_path_parameters")(known_ids)
    return loaded


# Building every operation's cases takes seconds: only where they run.
schema = served_schema() if ON_POSTGRESQL else None


def fuzzed(test):
    """One test per operation (``schema.parametrize``) on PostgreSQL; a skipped test
    elsewhere."""
    if schema is None:
        return pytest.mark.skip(reason=NOT_HERE)(test)
    return schema.parametrize()(
        hypothesis_settings(suppress_health_check=[HealthCheck.function_scoped_fixture])(test)
    )


@pytest.fixture(autouse=True)
def in_process(settings):
    """Requests reach the WSGI application in this thread, on the test's connection and
    transaction (as Django's test client does, the connection is not closed after each
    request); a cache of its own, and no limit on wrong tokens (the checks send wrong ones
    on purpose, thousands of them)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "fz"}
    }
    settings.CONSOLE_TOKEN_FAILURES = 10**9
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def world(importer, approver):
    """A batch in each status, a job with failed customers, a held job, a profile."""
    other = UserFactory(username="other-reviewer")
    other.groups.add(role_group("reviewer"))
    batches = {}
    for status in ("draft", "validated", "approved", "submitted", "held"):
        batch = BatchFactory(name=f"fuzz-{status}", created_by=importer)
        for number in range(3):
            CustomerFactory(batch=batch, legacy_id=f"{status}-{number}", is_valid=True)
        batches[status] = batch
    CustomerFactory(batch=batches["draft"], legacy_id="draft-bad", email="not an email")
    batch_validate(batch=batches["draft"], user=importer)  # stays a draft, with problems
    for status in ("validated", "approved", "submitted", "held"):
        mark_validated(batches[status])
    for status in ("approved", "submitted", "held"):
        batch_approve(batch=batches[status], user=other)
    failed = job_start(batch=batches["submitted"], user=other)
    job_fail(failed, legacy_ids=["submitted-0"], error="422 Invalid customer entry")
    held = job_start(batch=batches["held"], user=other)
    MigrationJob.objects.filter(pk=held.pk).update(status=MigrationJob.Status.HELD)
    profile = profile_save(
        name="fuzz-profile",
        document={"kind": "customers", "fields": {"id": "Código", "name": "Nombre"}},
        user=importer,
    )
    KNOWN.clear()
    KNOWN["batch_id"] = [batch.pk for batch in batches.values()]
    KNOWN["job_id"] = [failed.pk, held.pk]
    KNOWN["profile_id"] = [profile.pk]


@pytest.fixture(scope="module", autouse=True)
def tally(request):
    """How many requests the runs made, and the time they took, in the run's output."""
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    runs = [f"{role} {int(cases)} in {seconds:.0f} s" for role, (cases, seconds) in TALLY.items()]
    if reporter is None or capture is None or not any(cases for cases, _ in TALLY.values()):
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(
            f"\nschema fuzzing, requests as {', as '.join(runs)} "
            f"({MAX_EXAMPLES} examples per operation and phase, seed {SEED})"
        )


def token_for(user) -> dict[str, str]:
    return {"Authorization": f"Token {Token.objects.create(user=user).key}"}


@pytest.fixture
def approver_token(world) -> dict[str, str]:
    user = UserFactory(username="fuzz-approver")
    user.groups.add(role_group("reviewer"))
    return token_for(user)


@pytest.fixture
def outsider_token(world) -> dict[str, str]:
    return token_for(UserFactory(username="fuzz-outsider"))


def call(case, headers: dict[str, str], role: str) -> None:
    started = time.perf_counter()
    try:
        case.call_and_validate(headers=headers)
    finally:
        TALLY[role][0] += 1
        TALLY[role][1] += time.perf_counter() - started


@fuzzed
def test_the_api_answers_an_approver_as_its_schema_says(case, approver_token):
    call(case, approver_token, "approver")


@fuzzed
def test_the_api_answers_a_user_without_permissions_as_its_schema_says(case, outsider_token):
    call(case, outsider_token, "outsider")


def test_the_fuzzed_schema_is_the_one_served(client, importer):
    client.force_login(importer)
    served = client.get(reverse("api:schema"), {"format": "json"}).json()
    assert served == SchemaGenerator().get_schema(request=None, public=True)
