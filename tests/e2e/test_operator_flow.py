"""The whole flow in Chromium, as two new operators would drive it.

A stages four files, validates, and is not offered "approve"; B approves; A submits and
watches the job's progress reach 100% without reloading the page; then A downloads the
failed customers of a job that had failures.
"""

import csv
import io

import pytest
from django.contrib.auth.models import Permission

from customers.models import StagingBatch
from migrations_jobs.models import MigrationJob
from migrations_jobs.sandbox.services import sandbox_arrivals, sandbox_configure
from migrations_jobs.services import job_start
from tests.e2e.waiting import wait_until
from tests.factories import UserFactory
from tests.worker import approved_batch, job_wait, start_worker_fixture  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

KINDS = ("customers", "balances", "devices", "metrics")
STAGER_PERMS = (
    "import_stagingbatch",
    "add_stagingbatch",
    "change_stagingbatch",
    "view_stagingbatch",
    "view_stagedcustomer",
    "change_stagedcustomer",
    "view_customerproblem",
    "submit_stagingbatch",
    "view_migrationjob",
    "cancel_migrationjob",
    "retry_migrationjob",
)
REVIEWER_PERMS = ("approve_stagingbatch", "view_stagingbatch", "view_stagedcustomer")
TIMEOUT_MS = 30_000


def _user(username: str, codenames: tuple[str, ...]):
    user = UserFactory(username=username)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


def _log_in(browser, base_url: str, username: str):
    context = browser.new_context(
        accept_downloads=True, locale="en-US", viewport={"width": 1600, "height": 1000}
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(f"{base_url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    return page


def _message(page) -> str:
    return page.locator("ul.messagelist li").last.inner_text()


def test_two_operators_migrate_a_batch_in_the_browser(
    browser, live_server, start_worker, samples, screens, settings
):
    base = live_server.url
    # Small chunks and a one-second pace, so the job runs long enough to be watched.
    settings.MIGRATION_CHUNK_SIZE = 3
    settings.MIGRATION_MIN_INTERVAL_S = 1.0
    settings.MIGRATION_HOURLY_CAP = 0
    settings.MASIVO_BASE_URL = f"{base}/sandbox/api/storefront/v1"
    settings.MASIVO_AUTH_URL = f"{base}/sandbox/auth/authorize"
    from migrations_jobs.sandbox.services import sandbox_reset

    sandbox_reset()
    # The worker starts, and sends a job with failures (downloaded at the end), while A
    # stages and validates in the browser; both are done before A submits.
    worker = start_worker(ready=False, MIGRATION_MIN_INTERVAL_S=1.0, MIGRATION_CHUNK_SIZE=3)
    _user("ana", STAGER_PERMS)
    _user("ben", REVIEWER_PERMS)
    sandbox_configure(reject_ids=["broken-000001"])
    failing = approved_batch(
        creator=UserFactory(username="carla"),
        approver=UserFactory(username="dan", is_superuser=True),
        size=6,
        prefix="broken",
    )
    failed_job = job_start(batch=failing, user=UserFactory(username="eve", is_superuser=True))

    # --- A stages the four sample files into a new batch ---------------------------------
    ana = _log_in(browser, base, "ana")
    ana.goto(f"{base}/admin/customers/stagingbatch/add/")
    ana.fill("#id_name", "spring-migration")
    ana.click("input[name=_continue]")
    for kind in KINDS:
        ana.click("a.import_link")
        ana.select_option("#id_resource", label=kind)
        ana.set_input_files("#id_import_file", str(samples / f"{kind}.csv"))
        ana.click("#import-form input[type=submit]")
        ana.wait_for_selector("input[name=confirm]")
        assert "Nothing has been staged yet" in ana.content()
        ana.click("input[name=confirm]")
        assert f"{kind} from {kind}.csv" in _message(ana)
    batch = StagingBatch.objects.get(name="spring-migration")
    assert (batch.customer_count, batch.balance_count, batch.device_count, batch.metric_count) == (
        12,
        17,
        7,
        17,
    )

    # --- A validates; A is not offered "approve" -----------------------------------------
    ana.click("a.step-validate")
    ana.click("#confirm")
    assert "The batch is validated." in _message(ana)
    assert ana.locator("a.step-approve").count() == 0
    ana.screenshot(path=str(screens / "batch-validated.png"), full_page=True)

    # --- B approves ------------------------------------------------------------------------
    ben = _log_in(browser, base, "ben")
    ben.goto(f"{base}/admin/customers/stagingbatch/{batch.pk}/change/")
    ben.click("a.step-approve")
    ben.click("#confirm")
    assert "is approved" in _message(ben)
    # Links inside a line of text are told apart by more than their colour.
    underline = "a => getComputedStyle(a).textDecorationLine"
    assert ben.locator("div.breadcrumbs a").first.evaluate(underline) == "underline"

    # --- A submits and watches the progress reach 100% without a reload ------------------
    worker.wait_ready()
    failed_job = job_wait(job=failed_job, worker=worker)
    assert failed_job.status == MigrationJob.Status.PARTIALLY_FAILED
    arrived_before = sandbox_arrivals()["customers"]
    assert arrived_before == 5  # the failing job's, but its rejected customer
    ana.reload()
    ana.click("a.step-submit")
    assert "12 customers in 4 requests" in ana.content()
    ana.click("#confirm")
    ana.locator("ul.messagelist a").last.click()
    ana.wait_for_selector("#job-summary")
    ana.evaluate("window.__sameDocument = true")
    wait_until(ana, "() => document.querySelector('[data-job=sent]').textContent.trim() !== '0'")
    ana.screenshot(path=str(screens / "job-running.png"), full_page=True)
    wait_until(
        ana,
        "() => document.querySelector('[data-job=percent]').textContent.trim().startsWith('100')",
        timeout=60_000,
    )
    assert ana.evaluate("window.__sameDocument") is True  # updated in place, never reloaded
    job = job_wait(job=MigrationJob.objects.get(batch=batch), worker=worker)
    assert job.status == MigrationJob.Status.SUCCEEDED, worker.log()[-4000:]
    assert ana.locator("[data-job=sent]").inner_text().strip() == "12"
    assert sandbox_arrivals()["customers"] - arrived_before == 12
    ana.screenshot(path=str(screens / "job-succeeded.png"), full_page=True)

    # --- A job with failures (sent above): its failed customers download as CSV ----------
    ana.goto(f"{base}/admin/migrations_jobs/migrationjob/")
    ana.screenshot(path=str(screens / "job-history.png"), full_page=True)
    ana.goto(f"{base}/admin/migrations_jobs/migrationjob/{failed_job.pk}/change/")
    with ana.expect_download() as download_info:
        ana.click("a[href$='failed-customers.csv']")
    rows = list(csv.reader(io.StringIO(download_info.value.path().read_text())))
    assert [row[0] for row in rows[1:]] == ["broken-000001"]
    ana.screenshot(path=str(screens / "job-partially-failed.png"), full_page=True)

    ana.context.close()
    ben.context.close()
