"""A batch's steps in Chromium, walked by two operators at 1440 and 390 px: Ana (English)
stages a file with a broken row, validates, excludes the broken customer from the problems
list with a reason and validates again, and is told that another person must approve; Ben
(Spanish) approves; Ana submits. On every page: the step indicator marks the current step,
the confirmation buttons say what they do, an approved batch offers no Save, axe-core finds
no violation, and no page is wider than the window."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import Permission

from console.scheduling import TaskSend
from customers.models import StagedCustomer, StagingBatch
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

AXE_JS = Path(
    os.environ.get("AXE_JS")
    or Path(django_settings.BASE_DIR) / "var/ui-review/node_modules/axe-core/axe.min.js"
)
SIZES = {"desk": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}
TIMEOUT_MS = 30_000
RUN_AXE = """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
  .map(v => `${v.id}: ${v.nodes.map(n => n.target.join(' ')).slice(0, 3).join(', ')}`)"""
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
)
REVIEWER_PERMS = ("approve_stagingbatch", "view_stagingbatch", "view_stagedcustomer")


def _log_in(browser, base: str, username: str, *, size: str, locale: str):
    context = browser.new_context(
        viewport=SIZES[size], locale=locale, extra_http_headers={"Accept-Language": locale}
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    return page


def _user(username: str, codenames: tuple[str, ...]):
    user = UserFactory(username=username)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


class Checks:
    """What every page must hold to: no axe violation, nothing wider than the window; and a
    screenshot of each, named in order."""

    def __init__(self, folder: Path, tag: str):
        self.folder, self.tag, self.count = folder, tag, 0

    def __call__(self, page, name: str) -> None:
        self.count += 1
        page.screenshot(
            path=str(self.folder / f"{self.tag}-{self.count:02d}-{name}.png"), full_page=True
        )
        wider = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert wider <= 0, f"{name} is {wider}px wider than the window"
        if not AXE_JS.exists():
            pytest.skip(f"axe-core is not at {AXE_JS} (set AXE_JS)")
        page.evaluate(AXE_JS.read_text())  # no inline script: the policy refuses it
        assert page.evaluate(RUN_AXE) == [], name


def _current_step(page) -> str:
    return page.locator('.console-progress [aria-current="step"]').get_attribute("data-step")


def _message(page) -> str:
    return page.locator("ul.messagelist li").last.inner_text()


def _broken_customers(samples: Path, folder: Path) -> Path:
    """The sample customers with one email broken: a row validation flags."""
    path = folder / "customers.csv"
    text = (samples / "customers.csv").read_text(encoding="utf-8")
    path.write_text(text.replace("carlos.lopez2@example.com", "not-an-address"), "utf-8")
    return path


@pytest.mark.parametrize("size", ["desk", "phone"])
def test_two_operators_walk_a_batch_through_its_steps(
    browser, live_server, samples, screens, monkeypatch, tmp_path, size
):
    # No worker here: the submitted job's tasks are not sent (the job pages have their tests).
    monkeypatch.setattr(TaskSend, "__call__", lambda self: None)
    base = live_server.url
    _user("ana", STAGER_PERMS)
    _user("ben", REVIEWER_PERMS)
    check = Checks(screens, f"batch-steps-{size}")
    name = f"steps-{size}"

    # --- Ana creates the batch: saving it opens its page, where its files are imported ----
    ana = _log_in(browser, base, "ana", size=size, locale="en")
    ana.goto(f"{base}/admin/customers/stagingbatch/add/")
    ana.fill("#id_name", name)
    ana.click("input[name=_save]")
    ana.wait_for_selector(".console-progress")
    batch = StagingBatch.objects.get(name=name)
    assert ana.url.endswith(f"/admin/customers/stagingbatch/{batch.pk}/change/")
    assert _current_step(ana) == "staged"
    check(ana, "new-batch")

    ana.click(".console-forward a.import_link")
    ana.select_option("#id_resource", label="customers")
    ana.set_input_files("#id_import_file", str(_broken_customers(samples, tmp_path)))
    ana.click("#import-form input[type=submit]")
    ana.wait_for_selector("#confirm-import")
    # The confirmation, with its choice, comes after the preview it confirms.
    assert ana.evaluate(
        "document.querySelector('.import-preview').compareDocumentPosition("
        "document.querySelector('#confirm-import')) & Node.DOCUMENT_POSITION_FOLLOWING"
    )
    check(ana, "preview-with-problems")
    ana.check("input[name=on_problems][value=flag]")
    ana.click("input[name=confirm]")
    ana.wait_for_selector(".console-progress")

    # --- Ana validates: the problem is a warning at the top, linked to the list ----------
    ana.click("a.step-validate")
    assert ana.locator("#confirm").inner_text().strip() == "Yes, validate the batch"
    check(ana, "confirm-validate")
    ana.click("#confirm")
    assert "Fix or exclude the invalid customers" in _message(ana)
    assert ana.locator("#batch-problems").is_visible()
    check(ana, "draft-with-problems")

    # --- From the problems list, Ana excludes the customer, with a reason ---------------
    ana.click("#batch-problems a")
    ana.wait_for_selector("#result_list")
    check(ana, "problems")
    ana.check("#action-toggle")
    ana.select_option("select[name=action]", "exclude_customers")
    ana.click("button[name=index]")
    ana.wait_for_selector("#id_reason")
    check(ana, "exclude-with-a-reason")
    ana.fill("#id_reason", "Broken email in the old CRM")
    ana.click("#confirm")
    assert "1 customer is excluded from the migration" in _message(ana)
    excluded = StagedCustomer.objects.get(batch=batch, is_excluded=True)
    assert (excluded.legacy_id, excluded.exclusion_reason) == (
        "000777",
        "Broken email in the old CRM",
    )

    ana.goto(f"{base}/admin/customers/stagingbatch/{batch.pk}/change/")
    ana.click("a.step-validate")
    ana.click("#confirm")
    assert "The batch is validated." in _message(ana)
    assert _current_step(ana) == "validated"
    assert ana.locator("#batch-problems").count() == 0
    assert "excluded from the migration" in ana.locator("#batch-excluded-problems").inner_text()
    four_eyes = ana.locator(".console-four-eyes").inner_text()
    assert "another person must approve it" in four_eyes
    assert "ben" in four_eyes
    assert ana.locator("a.step-approve").count() == 0
    check(ana, "validated")

    # --- Ben, in Spanish, approves --------------------------------------------------------
    ben = _log_in(browser, base, "ben", size=size, locale="es")
    ben.goto(f"{base}/admin/customers/stagingbatch/{batch.pk}/change/")
    check(ben, "validated-for-the-approver")
    ben.click("a.step-approve")
    assert ben.locator("#confirm").inner_text().strip() == "Sí, aprobar el lote"
    check(ben, "confirm-approve")
    ben.click("#confirm")
    ben.wait_for_selector(".console-progress")
    assert _current_step(ben) == "approved"
    assert ben.locator("input[name=_save], input[name=_continue]").count() == 0
    assert ben.locator("#id_name").count() == 0  # read-only
    check(ben, "approved")

    # --- Ana submits: Submit forward, Reopen apart ----------------------------------------
    ana.reload()
    assert ana.locator("input[name=_save]").count() == 0
    assert ana.locator(".console-forward a.step-submit").count() == 1
    assert ana.locator(".console-forward a.step-reopen").count() == 0
    assert ana.locator("#step-back a.step-reopen").count() == 1
    check(ana, "approved-for-the-stager")
    ana.click(".console-forward a.step-submit")
    button = ana.locator("#confirm")
    assert button.inner_text().strip() == "Yes, submit the batch to Masivo"
    assert button.evaluate("b => b.getBoundingClientRect().width") > 100
    check(ana, "confirm-submit")
    ana.click("#confirm")
    ana.wait_for_selector(".console-progress")
    assert _current_step(ana) == "submitted"
    assert ana.locator("a.step-reopen").count() == 0
    batch.refresh_from_db()
    assert batch.status == StagingBatch.Status.SUBMITTED
    check(ana, "submitted")

    ana.context.close()
    ben.context.close()
