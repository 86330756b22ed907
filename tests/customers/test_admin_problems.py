"""The problems list: which problems still block, the file each points into, excluding their
customers with a reason, and the listed problems as a formula-safe CSV; all of it in the
reader's language, whoever validated."""

import csv
import io
import re

import pytest
from django.urls import reverse
from django.utils import translation

from customers.exports import PROBLEM_COLUMNS
from customers.models import CustomerProblem, StagedCustomer, StagingBatch
from customers.services import batch_refresh_counts, batch_validate
from tests.customers.importing import stage_sample
from tests.factories import BalanceFactory, CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db
Status = StagingBatch.Status
LIST = "admin:customers_customerproblem_changelist"
EXPORT = "admin:customers_customerproblem_export"


@pytest.fixture
def with_problems(client, importer, batch, samples):
    """The sample files staged, two customers broken, validated: a draft with problems."""
    client.force_login(importer)
    stage_sample(client, batch, samples, "customers")
    StagedCustomer.objects.filter(batch=batch, legacy_id="000777").update(email="broken")
    StagedCustomer.objects.filter(batch=batch, legacy_id="legacy-000124").update(
        name="=HYPERLINK(1)", email="also-broken"
    )
    batch_validate(batch=batch, user=importer)
    batch.refresh_from_db()
    assert batch.status == Status.DRAFT
    return batch


def listing(client, batch, **params) -> str:
    query = {"batch__id__exact": batch.pk, **params}
    response = client.get(reverse(LIST), query)
    assert response.status_code == 200
    return response.content.decode()


def exported(client, batch, **params) -> list[list[str]]:
    response = client.get(reverse(EXPORT), {"batch__id__exact": batch.pk, **params})
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="problems.csv"'
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


def test_each_problem_names_its_file_and_whether_it_still_blocks(client, with_problems):
    html = listing(client, with_problems)

    assert html.count('<span class="console-blocking">To fix</span>') == 2
    cells = re.findall(r'<td class="field-file">(.*?)</td>', html)
    # The row of the customers file each customer came from (the header is row 1).
    assert sorted(cells) == sorted(
        f"customers.csv, row {row}"
        for row in StagedCustomer.objects.filter(problems__batch=with_problems)
        .values_list("source_row", flat=True)
        .distinct()
    )
    assert all(re.fullmatch(r"customers\.csv, row \d+", cell) for cell in cells)
    # The customer's link is each row's only link (no link inside a link).
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)
    assert len(rows) == 2
    assert all(row.count("<a ") == 1 and "stagedcustomer" in row for row in rows)


def test_the_exclude_action_asks_for_a_reason_then_excludes_the_customers(
    client, importer, with_problems
):
    problems = list(with_problems.problems.values_list("pk", flat=True))
    url = reverse(LIST) + f"?batch__id__exact={with_problems.pk}"

    asked = client.post(url, {"action": "exclude_customers", "_selected_action": problems})

    assert asked.status_code == 200
    html = asked.content.decode()
    assert "Exclude these customers from the migration?" in html
    assert "000777" in html
    assert "legacy-000124" in html
    assert not StagedCustomer.objects.filter(batch=with_problems, is_excluded=True).exists()

    done = client.post(
        url,
        {
            "action": "exclude_customers",
            "_selected_action": problems,
            "select_across": "0",
            "reason": "Test rows of the old CRM",
        },
        follow=True,
    )

    excluded = StagedCustomer.objects.filter(batch=with_problems, is_excluded=True)
    assert sorted(excluded.values_list("legacy_id", flat=True)) == ["000777", "legacy-000124"]
    assert set(excluded.values_list("exclusion_reason", flat=True)) == {"Test rows of the old CRM"}
    text = [str(m) for m in done.context["messages"]][-1]
    assert text == "2 customers are excluded from the migration. Validate their batch again."
    assert listing(client, with_problems).count('class="console-excluded"') >= 2
    summary = batch_validate(batch=with_problems, user=importer)
    assert summary.is_validated


def test_the_exclude_action_needs_a_reason(client, with_problems):
    problems = list(with_problems.problems.values_list("pk", flat=True))
    url = reverse(LIST) + f"?batch__id__exact={with_problems.pk}"

    response = client.post(
        url, {"action": "exclude_customers", "_selected_action": problems, "reason": "  "}
    )

    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert not StagedCustomer.objects.filter(batch=with_problems, is_excluded=True).exists()


def test_the_exclude_action_is_not_offered_to_who_cannot_change_customers(
    client, approver, with_problems
):
    client.force_login(approver)

    html = listing(client, with_problems)

    assert "exclude_customers" not in html


def test_the_listed_problems_download_as_a_formula_safe_csv(client, with_problems):
    rows = exported(client, with_problems)

    assert rows[0] == PROBLEM_COLUMNS
    by_customer = {}
    for row in rows[1:]:
        by_customer.setdefault(row[1], []).append(dict(zip(PROBLEM_COLUMNS, row, strict=True)))
    assert set(by_customer) == {"000777", "legacy-000124"}
    first = by_customer["legacy-000124"][0]
    assert first["batch"] == "spring-migration"
    assert first["name"] == "'=HYPERLINK(1)"  # shown as text, never run as a formula
    assert first["email"] == "also-broken"
    assert first["field"] == "email"
    assert first["file"] == "customers.csv"
    assert {p["problem"] for p in by_customer["000777"]} >= {"Invalid value"}


def test_the_csv_follows_the_list_filters(client, importer, with_problems):
    bad = StagedCustomer.objects.get(batch=with_problems, legacy_id="000777")
    bad.is_excluded = True
    bad.save()

    blocking = exported(client, with_problems, blocking="yes")
    excluded = exported(client, with_problems, blocking="no")

    assert {row[1] for row in blocking[1:]} == {"legacy-000124"}
    assert {row[1] for row in excluded[1:]} == {"000777"}


def test_the_problems_and_their_csv_need_the_permission_to_view_customers(client, with_problems):
    """A problem quotes the customer's values (“broken” is not an email): viewing batches
    (or problems) is not enough to read them."""
    viewer = UserFactory(
        username="viewer",
        perms=["customers.view_stagingbatch", "customers.view_customerproblem"],
    )
    client.force_login(viewer)
    query = {"batch__id__exact": with_problems.pk}

    assert client.get(reverse(LIST), query).status_code == 403
    assert client.get(reverse(EXPORT), query).status_code == 403


def test_problems_of_rows_of_another_batch_cannot_be_excluded_here(client, importer, batch):
    other = CustomerFactory(legacy_id="theirs")
    BalanceFactory(customer=other, batch=batch)
    batch_refresh_counts(batch=batch)
    batch_validate(batch=batch, user=importer)
    client.force_login(importer)
    problems = list(batch.problems.values_list("pk", flat=True))
    assert problems

    response = client.post(
        reverse(LIST), {"action": "exclude_customers", "_selected_action": problems}, follow=True
    )

    text = [str(m) for m in response.context["messages"]][-1]
    assert text.startswith("None of the selected problems is of a customer of its batch")


# --- in the reader's language ---------------------------------------------------------------
BROKEN_EN = "“broken” is not a valid email address."
BROKEN_ES = "“broken” no es una dirección de correo electrónico válida."


def test_the_list_shows_each_problem_in_the_readers_language(client, importer, with_problems):
    query = {"batch__id__exact": with_problems.pk}

    spanish = client.get(reverse(LIST), query, HTTP_ACCEPT_LANGUAGE="es").content.decode()
    with translation.override("es"):
        batch_validate(batch=with_problems, user=importer)
    english = client.get(reverse(LIST), query, HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert BROKEN_ES in spanish
    assert BROKEN_EN not in spanish
    assert BROKEN_EN in english
    assert BROKEN_ES not in english


def test_the_csv_is_in_the_readers_language(client, with_problems):
    query = {"batch__id__exact": with_problems.pk}

    response = client.get(reverse(EXPORT), query, HTTP_ACCEPT_LANGUAGE="es")

    body = b"".join(response.streaming_content).decode()
    rows = list(csv.reader(io.StringIO(body)))
    message = PROBLEM_COLUMNS.index("message")
    assert BROKEN_ES in [row[message] for row in rows[1:]]


def test_a_problem_stored_before_templates_shows_its_own_words(client, importer, batch):
    CustomerProblem.objects.create(
        batch=batch,
        legacy_id="c-1",
        field="email",
        code=CustomerProblem.Code.INVALID,
        message="Stored before templates were.",
    )
    client.force_login(importer)

    page = client.get(reverse(LIST), {"batch__id__exact": batch.pk}, HTTP_ACCEPT_LANGUAGE="es")

    assert "Stored before templates were." in page.content.decode()


def listed_customers(client, batch, search: str, language: str) -> set[str]:
    with translation.override(language):
        client.cookies["django_language"] = language
        html = listing(client, batch, q=search)
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in html else ""
    return set(re.findall(r"stagedcustomer/\d+/change/[^>]*>([^<]+)</a>", body))


@pytest.mark.parametrize(
    ("language", "search"),
    [
        ("en", "not a valid email"),
        ("en", "also-broken"),
        ("es", "correo electrónico válida"),
        ("es", "DIRECCIÓN de correo"),
    ],
)
def test_the_search_finds_problems_by_the_words_the_reader_sees(
    client, with_problems, language, search
):
    found = listed_customers(client, with_problems, search, language)

    assert "legacy-000124" in found
    if search != "also-broken":
        assert found == {"000777", "legacy-000124"}


def test_a_search_for_words_no_problem_says_finds_none(client, with_problems):
    assert listed_customers(client, with_problems, "correo inexistente", "es") == set()
    assert listed_customers(client, with_problems, "no such words", "en") == set()
