"""The job page in Chromium.

It follows a job that a worker is sending without a reload: the chunk table (statuses,
attempts, finish times), the buttons offered, the failed customers and the job's dates.
And every job page, and the pages around it, reads well at 1440 and 390 px in English and
Spanish: axe-core finds no violation, and no page is wider than a phone's screen.
"""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from migrations_jobs.models import JobChunk, MigrationJob
from migrations_jobs.sandbox.services import sandbox_configure, sandbox_reset, sandbox_script
from migrations_jobs.services import job_process, job_start
from tests.e2e.waiting import wait_until
from tests.factories import UserFactory
from tests.worker import approved_batch, job_wait, start_worker_fixture  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

AXE_JS = Path(
    os.environ.get("AXE_JS")
    or Path(django_settings.BASE_DIR) / "var/ui-review/node_modules/axe-core/axe.min.js"
)
SIZES = {"desk": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}
TIMEOUT_MS = 30_000
# axe-core's run starts in the page and its violations are read later: the browser checks
# one window while the test loads the next.
START_AXE = """() => { window.__axeViolations = new Promise(started => setTimeout(started))
  .then(() => axe.run(document, {resultTypes: ['violations']}))
  .then(results => results.violations.map(v =>
    `${v.id}: ${v.nodes.map(n => n.target.join(' ')).slice(0, 3).join(', ')}`)); }"""
AXE_VIOLATIONS = "() => window.__axeViolations"
ENDED = "() => document.querySelector('[data-job=ended]').textContent.trim() !== ''"


def _page(browser, base: str, *, size: str = "desk", locale: str = "en", signed_in=None):
    """A page logged in as ana; with ``signed_in`` (the cookies of a context where ana
    logged in), a new context on the same session, without logging in again."""
    context = browser.new_context(
        viewport=SIZES[size],
        locale=locale,
        extra_http_headers={"Accept-Language": locale},
        accept_downloads=True,
    )
    context.set_default_timeout(TIMEOUT_MS)
    if signed_in is not None:
        context.add_cookies(signed_in)
        return context.new_page()
    page = context.new_page()
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "ana")
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    return page


@functools.cache
def _axe_source() -> str:
    return AXE_JS.read_text()


def _start_axe(page) -> None:
    """Start axe-core on the page as it stands; ``_axe_violations`` answers what it found."""
    if not AXE_JS.exists():
        pytest.skip(f"axe-core is not at {AXE_JS} (set AXE_JS)")
    page.evaluate(_axe_source())  # no inline script: the policy refuses it
    page.evaluate(START_AXE)


def _axe_violations(page) -> list[str]:
    return page.evaluate(AXE_VIOLATIONS)  # waits for the run to end


def _violations(page) -> list[str]:
    _start_axe(page)
    return _axe_violations(page)


def _wider_than_screen(page) -> int:
    """How many pixels the page is wider than the window (0 when it fits)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def _statuses(page) -> dict[str, str]:
    return page.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('tbody.console-chunk')]"
        ".map(t => [t.id, t.dataset.status]))"
    )


def _sandbox_settings(settings, base: str) -> None:
    settings.MASIVO_BASE_URL = f"{base}/sandbox/api/storefront/v1"
    settings.MASIVO_AUTH_URL = f"{base}/sandbox/auth/authorize"
    settings.MIGRATION_CHUNK_SIZE = 3
    settings.MIGRATION_MIN_INTERVAL_S = 0
    settings.MIGRATION_HOURLY_CAP = 0
    sandbox_reset()


def test_the_job_page_follows_a_job_that_a_worker_sends_without_a_reload(
    browser, live_server, start_worker, screens, settings
):
    base = live_server.url
    _sandbox_settings(settings, base)
    sandbox_configure(reject_ids=["live-000004"])
    worker = start_worker(MIGRATION_MIN_INTERVAL_S=1.0, MIGRATION_CHUNK_SIZE=3)
    ana = UserFactory(username="ana", is_superuser=True)
    batch = approved_batch(
        creator=UserFactory(username="stager"), approver=ana, size=12, prefix="live"
    )
    page = _page(browser, base)
    job = job_start(batch=batch, user=ana)

    page.goto(f"{base}/admin/migrations_jobs/migrationjob/{job.pk}/change/")
    page.evaluate("window.__sameDocument = true")
    assert page.locator("a.job-action-cancel").count() == 1
    first = _statuses(page)
    assert "sent" in first.values() or wait_until(
        page,
        "() => document.querySelector('tbody.console-chunk[data-status=sent]') !== null",
    )
    assert _statuses(page) != first or wait_until(
        page,
        "first => [...document.querySelectorAll('tbody.console-chunk')]"
        ".some(t => first[t.id] !== t.dataset.status)",
        arg=first,
    )
    sent = next(chunk for chunk, status in _statuses(page).items() if status == "sent")
    row = page.locator(f"#{sent} > tr").first
    assert row.locator("td.console-chunk-attempts").inner_text().strip() == "1"
    assert row.locator("td.console-chunk-finished").inner_text().startswith("20")
    page.screenshot(path=str(screens / "job-live-running.png"), full_page=True)
    assert _violations(page) == []

    wait_until(page, ENDED, timeout=90_000)
    job = job_wait(job=job, worker=worker)

    assert page.evaluate("window.__sameDocument") is True  # followed in place
    assert job.status == MigrationJob.Status.PARTIALLY_FAILED
    assert page.locator("[data-job=status]").inner_text() == "Partially failed"
    assert page.locator("a.job-action-cancel").count() == 0
    assert page.locator("a.job-action-resume").count() == 0
    assert page.locator("a.job-failed-csv").count() == 1
    assert "live-000004" in page.locator("#failed-customers").inner_text()
    assert "retrying cannot help" in page.locator("#failed-customers").inner_text()
    shown = _statuses(page)
    assert shown == {
        f"chunk-{chunk.sequence}": chunk.status for chunk in JobChunk.objects.filter(job=job)
    }
    finished = page.locator(".fieldBox.field-finished_at .readonly").inner_text()
    page.screenshot(path=str(screens / "job-live-ended.png"), full_page=True)
    page.reload()
    assert page.locator(".fieldBox.field-finished_at .readonly").inner_text() == finished != "-"
    page.context.close()


def _job_states(settings, stager, ana) -> dict[str, MigrationJob]:
    """A succeeded, a partially failed, a held and a running job, worked in this process."""

    def run(prefix: str, size: int, *, stop_after: int | None = None) -> MigrationJob:
        batch = approved_batch(creator=stager, approver=ana, size=size, prefix=prefix)
        job = job_start(batch=batch, user=ana)

        def should_stop() -> bool:
            done = MigrationJob.objects.get(pk=job.pk).sent_customers
            return stop_after is not None and done >= stop_after

        for _round in range(20):
            if job_process(job_id=job.pk, worker="e2e", should_stop=should_stop) is None:
                break
            if should_stop():
                break
            time.sleep(0.2)
        job.refresh_from_db()
        return job

    jobs = {"succeeded": run("fine", 6)}
    sandbox_configure(reject_ids=["partly-000001", "partly-000005"])
    jobs["partially_failed"] = run("partly", 9)
    sandbox_configure(reject_ids=[])
    settings.MIGRATION_UNKNOWN_OUTCOME = "hold"
    sandbox_script(status_code=502)
    jobs["held"] = run("lost", 6)
    settings.MIGRATION_UNKNOWN_OUTCOME = "resend"
    jobs["running"] = run("ongoing", 30, stop_after=6)
    return jobs


def test_job_pages_have_no_axe_violation_and_fit_a_phone(
    browser, live_server, masivo, screens, settings
):
    base = live_server.url
    _sandbox_settings(settings, base)
    ana = UserFactory(username="ana", is_superuser=True)
    jobs = _job_states(settings, UserFactory(username="stager"), ana)
    assert {name: job.status for name, job in jobs.items()} == {
        "succeeded": "succeeded",
        "partially_failed": "partially_failed",
        "held": "held",
        "running": "running",
    }
    partly = jobs["partially_failed"].pk
    pages = {
        "home": "/admin/",
        "jobs": "/admin/migrations_jobs/migrationjob/",
        **{
            f"job-{name}": f"/admin/migrations_jobs/migrationjob/{job.pk}/change/"
            for name, job in jobs.items()
        },
        "failed-customers": (
            f"/admin/customers/stagedcustomer/?outcome_job_id={partly}&outcome__exact=failed"
        ),
    }
    # One window per language and size; ana logs in once, the others share her session.
    views = {}
    signed_in = None
    for locale in ("en", "es"):
        for size in SIZES:
            page = _page(browser, base, size=size, locale=locale, signed_in=signed_in)
            signed_in = signed_in or page.context.cookies()
            views[(locale, size)] = page
    # Each page in every window in turn; the windows load it side by side, and axe-core
    # checks a window while the next one is screenshot.
    found, wider = {}, {}
    for name, path in pages.items():
        for page in views.values():
            page.goto(base + path, wait_until="commit")
        for (locale, size), page in views.items():
            page.wait_for_load_state("load")
            page.screenshot(path=str(screens / f"{name}-{locale}-{size}.png"), full_page=True)
            wider[f"{name} {locale} {size}"] = _wider_than_screen(page)
            _start_axe(page)
        for (locale, size), page in views.items():
            key = f"{name} {locale} {size}"
            found[key] = (wider[key], _axe_violations(page))
    # The send-again list: chosen from the job's sent customers.
    for (locale, size), page in views.items():
        page.goto(f"{base}/admin/customers/stagedcustomer/?outcome__exact=sent")
        page.check("#action-toggle")
        page.select_option("select[name=action]", "send_again")
        page.click("button[name=index]")
        page.wait_for_selector("#id_reason")
        wider[f"send-again {locale} {size}"] = _wider_than_screen(page)
        _start_axe(page)
    for (locale, size), page in views.items():
        key = f"send-again {locale} {size}"
        found[key] = (wider[key], _axe_violations(page))
        page.context.close()

    assert {key: value for key, value in found.items() if value != (0, [])} == {}
