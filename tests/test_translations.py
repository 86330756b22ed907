"""The console speaks Spanish to operators whose browser asks for it, from its own catalogue
(locale/es/LC_MESSAGES/django.po), and English otherwise; the catalogue is complete."""

from __future__ import annotations

import ast
import re
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from tests.customers.importing import preview, to_csv
from tests.factories import BatchFactory, UserFactory

pytestmark = pytest.mark.django_db

CATALOGUE = Path(settings.BASE_DIR) / "locale" / "es" / "LC_MESSAGES" / "django.po"
SPANISH = {"HTTP_ACCEPT_LANGUAGE": "es"}
ENGLISH = {"HTTP_ACCEPT_LANGUAGE": "en"}


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_superuser=True)


@pytest.fixture
def root_client(client, superuser):
    client.force_login(superuser)
    return client


# --- pages ---------------------------------------------------------------------------------


def test_login_page_is_spanish_when_the_browser_asks_for_it(client):
    page = client.get(reverse("admin:login"), **SPANISH).content.decode()

    assert "Consola de migración a Masivo" in page
    assert "Masivo Migration Console" not in page


def test_login_page_is_english_otherwise(client):
    page = client.get(reverse("admin:login"), **ENGLISH).content.decode()

    assert "Masivo Migration Console" in page
    assert "Consola de migración a Masivo" not in page


def test_admin_home_is_spanish_when_the_browser_asks_for_it(root_client):
    response = root_client.get(reverse("admin:index"), **SPANISH)
    page = response.content.decode()

    assert response.status_code == 200
    assert "Consola de migración a Masivo" in page
    assert "Clientes enviados por día" in page
    assert "Lotes recientes" in page
    assert "Recent batches" not in page


def test_admin_home_is_english_otherwise(root_client):
    page = root_client.get(reverse("admin:index"), **ENGLISH).content.decode()

    assert "Masivo Migration Console" in page
    assert "Recent batches" in page
    assert "Lotes recientes" not in page


@pytest.mark.parametrize(
    ("headers", "shown", "hidden"),
    [
        (SPANISH, ["Importar un archivo", "Validar"], ["Import a file"]),
        (ENGLISH, ["Import a file", "Validate"], ["Importar un archivo"]),
    ],
    ids=["es", "en"],
)
def test_batch_page_buttons_follow_the_browser_language(
    root_client, superuser, headers, shown, hidden
):
    batch = BatchFactory(name="otoño", created_by=superuser)

    page = root_client.get(
        reverse("admin:customers_stagingbatch_change", args=[batch.pk]), **headers
    ).content.decode()

    for text in shown:
        assert text in page
    for text in hidden:
        assert text not in page


@pytest.mark.parametrize(
    ("language", "problem", "nothing_staged"),
    [
        (
            "es",
            "fila 3 (id “c1”), columna “id”: “c1” vuelve a aparecer en este archivo (primero en la "
            "fila 2)",
            "No se preparó nada.",
        ),
        (
            "en",
            "row 3 (id “c1”), column “id”: “c1” appears again in this file (first at row 2)",
            "Nothing was staged.",
        ),
    ],
)
def test_staging_import_problems_follow_the_browser_language(
    root_client, superuser, language, problem, nothing_staged
):
    batch = BatchFactory(name="otoño", created_by=superuser)
    root_client.defaults["HTTP_ACCEPT_LANGUAGE"] = language
    rows = [["id", "name"], ["c1", "Ann"], ["c1", "Ann again"]]

    response = preview(root_client, batch, "customers", "customers.csv", to_csv(rows))

    problems = response.context["result"].messages()
    assert any(problem in line for line in problems), problems
    page = response.content.decode()
    assert nothing_staged in page


# --- the catalogue -------------------------------------------------------------------------


def catalogue_entries(path: Path = CATALOGUE) -> list[dict]:
    """Each entry of a .po file: flags, msgid, msgid_plural and msgstr (by plural index;
    None for a singular entry). Obsolete (#~) entries are left out."""
    entries: list[dict] = []
    entry: dict | None = None
    field: tuple | None = None
    for line in path.read_text(encoding="utf-8").splitlines() + [""]:
        if not line.strip() or line.startswith("#~"):
            if entry is not None and not line.startswith("#~"):
                entries.append(entry)
                entry = None
            continue
        if entry is None:
            entry = {"flags": set(), "msgid": "", "msgid_plural": None, "msgstr": {}}
        if line.startswith("#,"):
            entry["flags"] |= {flag.strip() for flag in line[2:].split(",")}
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            if field[0] == "msgstr":
                entry["msgstr"][field[1]] += ast.literal_eval(line)
            else:
                entry[field[0]] += ast.literal_eval(line)
        else:
            keyword, _space, value = line.partition(" ")
            index = None
            if keyword.startswith("msgstr["):
                keyword, index = "msgstr", int(keyword[7:-1])
            field = (keyword, index)
            if keyword == "msgstr":
                entry["msgstr"][index] = ast.literal_eval(value)
            else:
                entry[keyword] = ast.literal_eval(value)
    return [e for e in entries if e["msgid"]]


PRINTF = re.compile(r"%(?:\([^)]+\))?[-#0 +]*\d*(?:\.\d+)?[sdifr%]")
BRACES = re.compile(r"\{[^{}]*\}")
TAGS = re.compile(r"</?[a-zA-Z][^>]*>")
QUOTES = re.compile(r"[“”]")


def placeholders(text: str, flags: set[str]) -> Counter:
    """Everything a translation must keep: format placeholders, HTML tags and the curly
    quotes around values."""
    found = TAGS.findall(text) + QUOTES.findall(text)
    if "python-format" in flags:
        found += PRINTF.findall(text)
    if "python-brace-format" in flags:
        found += BRACES.findall(text)
    return Counter(found)


def test_catalogue_has_many_entries():
    assert len(catalogue_entries()) > 500


def test_catalogue_has_no_untranslated_entry():
    untranslated = [
        e["msgid"] for e in catalogue_entries() if not all(e["msgstr"].values()) or not e["msgstr"]
    ]
    assert untranslated == []


def test_catalogue_has_no_fuzzy_entry():
    text = CATALOGUE.read_text(encoding="utf-8")
    assert "fuzzy" not in text.split("\n\n", 1)[0]  # the header
    assert [e["msgid"] for e in catalogue_entries() if "fuzzy" in e["flags"]] == []


def test_catalogue_plural_entries_fill_both_forms():
    header = CATALOGUE.read_text(encoding="utf-8").split("\n\n", 1)[0]
    assert "Plural-Forms: nplurals=2; plural=(n != 1);" in header
    plurals = [e for e in catalogue_entries() if e["msgid_plural"] is not None]
    assert plurals
    for entry in plurals:
        assert sorted(entry["msgstr"]) == [0, 1], entry["msgid"]


def test_every_translation_keeps_the_placeholders_of_its_original():
    changed = []
    for entry in catalogue_entries():
        flags = entry["flags"]
        originals = {None: entry["msgid"]}
        if entry["msgid_plural"] is not None:
            originals = {0: entry["msgid"], 1: entry["msgid_plural"]}
        for index, original in originals.items():
            translation = entry["msgstr"].get(index, "")
            if placeholders(original, flags) != placeholders(translation, flags):
                changed.append((original, translation))
    assert changed == []
