"""A batch with its customers' history, in Chromium, from the files to Masivo.

Ana stages the sample customers, balances, transactions and events through the import
(preview, then confirm) and validates: the batch page reconciles the transactions with the
balances. Ben approves and submits; a real worker sends the job in its three phases,
customers, then transactions, then events, and the job page follows them to "Done" without
a reload, with as many transactions and events sent as the files hold. The job page and the
batch page then read well in English and Spanish at 1440 and 390 px: axe-core finds no
violation, neither page is wider than the window, and their history parts (phases,
chunks, reconciliation) hold no English when read in Spanish. Screenshots of both pages,
in both languages and at both sizes, go to var/e2e-screens/history/.
"""

from __future__ import annotations

import csv
import functools
import os
import re
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import Permission

from customers.models import StagingBatch
from migrations_jobs.models import JobChunk, MigrationJob
from migrations_jobs.sandbox.history import sandbox_history_arrivals
from migrations_jobs.sandbox.models import SandboxRequest
from migrations_jobs.sandbox.services import sandbox_arrivals
from tests.e2e.waiting import wait_until
from tests.factories import UserFactory
from tests.worker import job_wait, start_worker_fixture  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

AXE_JS = Path(
    os.environ.get("AXE_JS")
    or Path(django_settings.BASE_DIR) / "var/ui-review/node_modules/axe-core/axe.min.js"
)
SCREENS = Path(django_settings.BASE_DIR) / "var" / "e2e-screens" / "history"
SIZES = {"desktop": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}
TIMEOUT_MS = 30_000
# axe-core's run starts in the page and its violations are read later: the browser checks
# one window while the test loads the next.
START_AXE = """() => { window.__axeViolations = new Promise(started => setTimeout(started))
  .then(() => axe.run(document, {resultTypes: ['violations']}))
  .then(results => results.violations.map(v =>
    `${v.id}: ${v.nodes.map(n => n.target.join(' ')).slice(0, 3).join(', ')}`)); }"""
AXE_VIOLATIONS = "() => window.__axeViolations"
KINDS = ("customers", "balances", "transactions", "events")
PHASES = ("customers", "transactions", "events")
# Between phases, the worker waits this long: long enough to see a phase waiting (the
# customers done while the events still wait spans this delay twice and the transactions'
# requests: well over the page's 1.5 s between two updates, even on a loaded machine).
HISTORY_DELAY_S = 2
STAGER_PERMS = (
    "import_stagingbatch",
    "add_stagingbatch",
    "change_stagingbatch",
    "view_stagingbatch",
    "view_stagedcustomer",
    "change_stagedcustomer",
    "view_customerproblem",
    "view_migrationjob",
)
REVIEWER_PERMS = (
    "approve_stagingbatch",
    "submit_stagingbatch",
    "view_stagingbatch",
    "view_stagedcustomer",
    "view_customerproblem",
    "view_migrationjob",
)
PHASE_STATES = """() => Object.fromEntries([...document.querySelectorAll('tr[data-phase]')]
  .map(row => [row.dataset.phase, row.dataset.state]))"""
PHASE_FIGURES = """() => Object.fromEntries([...document.querySelectorAll('tr[data-phase]')]
  .map(row => [row.dataset.phase, [...row.querySelectorAll('td.console-number')]
    .map(cell => cell.textContent.trim())]))"""
ALL_DONE = """phases => phases.every(phase =>
  document.querySelector(`tr[data-phase="${phase}"]`)?.dataset.state === 'done')"""
CUSTOMERS_DONE_EVENTS_WAITING = """() =>
  document.querySelector('tr[data-phase="customers"]').dataset.state === 'done'
  && document.querySelector('tr[data-phase="events"]').dataset.state === 'waiting'"""
# The parts of the job and batch pages that show history, and English left in them.
HISTORY_SECTIONS = ["[data-job-part=phases]", "#chunks", "#reconciliation"]
ENGLISH = re.compile(
    r"\b(?:Phases?|Done|Sending|Left out|Waiting for[\w ]*|\d+ (?:transactions?|events?)"
    r"|Reconciliation|Balances?|Transactions|Reward|Download)\b",
    re.IGNORECASE,
)
ENDED = "() => document.querySelector('[data-job=ended]').textContent.trim() !== ''"


def _user(username: str, codenames: tuple[str, ...]):
    user = UserFactory(username=username)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


def _log_in(
    browser,
    base: str,
    username: str,
    *,
    size: str = "desktop",
    locale: str = "en",
    signed_in=None,
):
    """A page where ``username`` logged in; with ``signed_in`` (the cookies of a context
    where they did), a new context on that session, without logging in again."""
    context = browser.new_context(
        viewport=SIZES[size], locale=locale, extra_http_headers={"Accept-Language": locale}
    )
    context.set_default_timeout(TIMEOUT_MS)
    if signed_in is not None:
        context.add_cookies(signed_in)
        return context.new_page()
    page = context.new_page()
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    return page


def _message(page) -> str:
    return page.locator("ul.messagelist li").last.inner_text()


def _rows(path: Path) -> int:
    with path.open(encoding="utf-8", newline="") as file:
        return sum(1 for _row in csv.DictReader(file))


def _wider_than_screen(page) -> int:
    """How many pixels the page is wider than the window (0 when it fits)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


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


def _english_left(page) -> list[str]:
    """English words left in the history parts of a page read in Spanish."""
    text = page.evaluate(
        "sections => sections.map(s => document.querySelector(s)?.innerText || '').join(' ')",
        HISTORY_SECTIONS,
    )
    return sorted(set(ENGLISH.findall(text)))


def test_a_batch_with_history_is_sent_in_three_phases_that_the_job_page_follows(
    browser, live_server, start_worker, samples, settings
):
    base = live_server.url
    # Several requests per phase, paced, so the job page sees each phase move.
    settings.MIGRATION_CHUNK_SIZE = 4
    settings.MASIVO_TX_MAX_ITEMS = 10
    settings.MASIVO_EVENTS_MAX_ITEMS = 3
    settings.MASIVO_HISTORY_DELAY_S = HISTORY_DELAY_S
    # The worker starts while Ana stages and validates; it must be ready before Ben submits.
    worker = start_worker(
        ready=False,
        MIGRATION_MIN_INTERVAL_S=0.5,
        MIGRATION_CHUNK_SIZE=4,
        MASIVO_TX_MAX_ITEMS=10,
        MASIVO_EVENTS_MAX_ITEMS=3,
        MASIVO_HISTORY_DELAY_S=HISTORY_DELAY_S,
    )
    _user("ana", STAGER_PERMS)
    _user("ben", REVIEWER_PERMS)
    in_files = {kind: _rows(samples / f"{kind}.csv") for kind in KINDS}
    assert (in_files["transactions"], in_files["events"]) == (27, 5)

    # --- Ana stages the four files, each previewed, then confirmed ------------------------
    ana = _log_in(browser, base, "ana")
    ana.goto(f"{base}/admin/customers/stagingbatch/add/")
    ana.fill("#id_name", "history-migration")
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
    batch = StagingBatch.objects.get(name="history-migration")
    staged = (
        batch.customer_count,
        batch.balance_count,
        batch.transaction_count,
        batch.event_count,
    )
    assert staged == tuple(in_files[kind] for kind in KINDS)

    # --- Ana validates: the transactions add up to the balances ---------------------------
    ana.click("a.step-validate")
    ana.click("#confirm")
    assert "The batch is validated." in _message(ana)
    reconciliation = ana.locator("#reconciliation")
    assert "Every customer's transactions add up to its balance" in reconciliation.inner_text()
    assert reconciliation.locator("tr.console-mismatch").count() == 0
    assert reconciliation.locator("tbody tr").count() == 3  # one row per reward
    assert ana.locator("a.step-approve").count() == 0

    # --- Ben approves and submits ---------------------------------------------------------
    ben = _log_in(browser, base, "ben")
    ben.goto(f"{base}/admin/customers/stagingbatch/{batch.pk}/change/")
    ben.click("a.step-approve")
    ben.click("#confirm")
    assert "is approved" in _message(ben)
    worker.wait_ready()
    ben.click(".console-forward a.step-submit")
    ben.click("#confirm")
    ben.locator("ul.messagelist a").last.click()

    # --- The job page follows the three phases to "Done" without a reload -----------------
    ben.wait_for_selector("#job-summary")
    ben.evaluate("window.__sameDocument = true")
    job = MigrationJob.objects.get(batch=batch)
    assert ben.evaluate(
        "() => [...document.querySelectorAll('tr[data-phase]')].map(row => row.dataset.phase)"
    ) == list(PHASES)
    first = ben.evaluate(PHASE_STATES)
    # Events wait behind two phases and two delays: still waiting when the page opens.
    assert first["events"] == "waiting", first
    assert "each phase starts 2 seconds after" in ben.locator("[data-job-part=phases]").inner_text()
    # Customers done while events still wait: the table moves phase by phase, in place.
    wait_until(ben, CUSTOMERS_DONE_EVENTS_WAITING, timeout=TIMEOUT_MS)
    wait_until(ben, ALL_DONE, arg=list(PHASES), timeout=TIMEOUT_MS)
    wait_until(ben, ENDED, timeout=TIMEOUT_MS)
    assert ben.evaluate("window.__sameDocument") is True  # followed in place, never reloaded

    job = job_wait(job=job, worker=worker)
    assert job.status == MigrationJob.Status.SUCCEEDED, worker.log()[-4000:]
    assert (job.sent_customers, job.sent_transactions, job.sent_events) == (
        in_files["customers"],
        in_files["transactions"],
        in_files["events"],
    )
    # Total, sent, failed, left out, chunks: as the files hold, all sent, none failed.
    figures = ben.evaluate(PHASE_FIGURES)
    for phase in PHASES:
        total, sent, failed, left_out, _chunks = figures[phase]
        assert (total, sent, failed, left_out) == (
            str(in_files[phase]),
            str(in_files[phase]),
            "0",
            "0",
        )
    assert ben.locator("[data-job=status]").inner_text() == "Succeeded"
    assert ben.locator("[data-job-part=phases] [data-note=phases-waiting]").count() == 0
    # What reached Masivo, in order: customers, then transactions, then events.
    assert sandbox_arrivals()["customers"] == in_files["customers"]
    assert sandbox_history_arrivals(kind=SandboxRequest.Kind.TRANSACTIONS)["items"] == 27
    assert sandbox_history_arrivals(kind=SandboxRequest.Kind.EVENTS)["items"] == 5
    kinds = list(
        SandboxRequest.objects.filter(is_accepted=True)
        .order_by("received_at", "pk")
        .values_list("kind", flat=True)
    )
    assert kinds == sorted(kinds, key=PHASES.index)
    # The chunk table says which chunks carry history, and how much.
    history = JobChunk.objects.filter(job=job).exclude(endpoint="customers").order_by("sequence")
    assert {chunk.endpoint for chunk in history} == {"transactions", "events"}
    for chunk in history:
        row = ben.locator(f"#chunk-{chunk.sequence} > tr").first.inner_text()
        noun = "transaction" if chunk.endpoint == "transactions" else "event"
        assert chunk.get_endpoint_display() in row, row
        assert f"{chunk.item_count} {noun}" in row, row
    ana.context.close()
    signed_in = ben.context.cookies()  # Ben's session, for the pages below
    ben.context.close()

    # --- Both pages in English and Spanish, on a desk and on a phone: nothing wider than
    # the window, no axe violation, no English left in the Spanish history parts ---------
    SCREENS.mkdir(parents=True, exist_ok=True)
    pages = {
        "job": f"/admin/migrations_jobs/migrationjob/{job.pk}/change/",
        "batch": f"/admin/customers/stagingbatch/{batch.pk}/change/",
    }
    views = {
        (locale, size): _log_in(browser, base, "ben", size=size, locale=locale, signed_in=signed_in)
        for locale in ("en", "es")
        for size in SIZES
    }
    # Each page in every window in turn; axe-core checks a window while the next one loads.
    found, seen = {}, {}
    for name, path in pages.items():
        for (locale, size), page in views.items():
            page.goto(base + path)
            page.screenshot(path=str(SCREENS / f"{name}-{locale}-{size}.png"), full_page=True)
            english = _english_left(page) if locale == "es" else []
            seen[f"{name} {locale} {size}"] = (_wider_than_screen(page), english)
            _start_axe(page)
        for (locale, size), page in views.items():
            key = f"{name} {locale} {size}"
            wider, english = seen[key]
            found[key] = (wider, _axe_violations(page), english)
    for page in views.values():
        page.context.close()
    print(f"\nScreenshots: {SCREENS}")  # noqa: T201

    problems = {key: value for key, value in found.items() if value != (0, [], [])}
    assert problems == {}, "\n".join(f"{key}: {value}" for key, value in problems.items())
