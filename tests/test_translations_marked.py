"""Every interface string is marked for translation, so none can slip past the catalogue
(tests/test_translations.py checks that every marked string has its Spanish).

Templates: the text a page shows and the attributes a person reads or hears (``title``,
``alt``, ``placeholder``, ``aria-label``, a button's ``value``) hold no words outside
``{% translate %}`` and ``{% blocktranslate %}``. Python: labels, help texts, descriptions,
choices and admin messages are ``gettext`` calls, not bare literals.
"""

from __future__ import annotations

import ast
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings

BASE = Path(settings.BASE_DIR)
TEMPLATES = sorted((BASE / "templates").rglob("*.html"))
PYTHON = sorted(
    path
    for app in ("console", "customers", "migrations_jobs", "config")
    for path in (BASE / app).rglob("*.py")
    if "migrations" not in path.relative_to(BASE / app).parts[:-1]
)
# The stand-in for Masivo answers as Masivo does, in English; its admin is the console's.
MASIVO_ANSWERS = ("migrations_jobs/sandbox/views.py", "migrations_jobs/sandbox/intake.py")

WORD = re.compile(r"[^\W\d_]{2,}")
TRANSLATED = re.compile(
    r"{%\s*blocktrans(?:late)?\b.*?{%\s*endblocktrans(?:late)?\s*%}|{%\s*trans(?:late)?\s[^%]*%}",
    re.S,
)
TAG = re.compile(r"{%.*?%}|{{.*?}}|{#.*?#}", re.S)
COMMENT = re.compile(r"{%\s*comment\s*%}.*?{%\s*endcomment\s*%}|<!--.*?-->", re.S)
READ_ATTRIBUTES = {"title", "alt", "placeholder", "aria-label", "aria-description"}
# Words a page may show as they are: names, units and codes the same in every language.
UNTRANSLATED_WORDS = {
    "Masivo", "JSON", "CSV", "XLSX", "TSV", "API", "HTTP", "UTC", "ISO", "iOS", "Android",
}  # fmt: skip
# Blocks whose text is markup, not words shown (class names, head elements).
MARKUP_BLOCKS = re.compile(
    r"{%\s*block\s+(bodyclass|extrahead|extrastyle)\s*%}.*?{%\s*endblock[^%]*%}", re.S
)


class _Words(HTMLParser):
    """The words a person reads in a template whose tags and translated parts are gone."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        values = dict(attrs)
        for name, value in attrs:
            reads = name in READ_ATTRIBUTES or (
                tag == "input"
                and name == "value"
                and values.get("type") in ("submit", "button", "reset")
            )
            if reads and value:
                self._check(value, where=f"<{tag} {name}>")

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self._check(data, where="text")

    def _check(self, text: str, *, where: str) -> None:
        words = [w for w in WORD.findall(text) if w not in UNTRANSLATED_WORDS]
        if words:
            self.found.append(f"{where}: {text.strip()[:80]!r}")


def template_words(source: str) -> list[str]:
    source = COMMENT.sub(" ", source)
    source = MARKUP_BLOCKS.sub(" ", source)
    source = TRANSLATED.sub(" ", source)
    source = TAG.sub(" ", source)
    parser = _Words()
    parser.feed(source)
    parser.close()
    return parser.found


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(BASE)))
def test_template_shows_no_word_outside_a_translation(path):
    assert template_words(path.read_text()) == []


def test_the_template_check_finds_a_bare_word_and_a_bare_label():
    found = template_words(
        '<p>{% translate "Fine" %}</p><p>Batches</p><a title="Open it" href="{{ url }}">'
        "{% blocktranslate %}Also {{ fine }}{% endblocktranslate %}</a>"
        '<input type="submit" value="Save">'
    )
    assert found == ["text: 'Batches'", "<a title>: 'Open it'", "<input value>: 'Save'"]


# --- Python ---------------------------------------------------------------------------------
LABEL_KEYWORDS = {
    "verbose_name",
    "verbose_name_plural",
    "help_text",
    "label",
    "description",
    "short_description",
    "empty_label",
    "empty_value_display",
}
MESSAGE_CALLS = {"success", "info", "warning", "error", "add_message"}


def _is_text(node: ast.AST) -> bool:
    """A bare string (or f-string) with words in it; not a code (one lower-case word such
    as a format's name, ``xlsx``) nor a name the same in every language."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        value = node.value
        if re.fullmatch(r"[a-z0-9_.-]+", value):
            return False
        return any(w not in UNTRANSLATED_WORDS for w in WORD.findall(value))
    return isinstance(node, ast.JoinedStr)


def python_bare_labels(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.keyword) and node.arg in LABEL_KEYWORDS and _is_text(node.value):
            found.append(f"line {node.value.lineno}: {node.arg}=")
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else ""
            owner = (
                func.value.id
                if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                else ""
            )
            if owner == "messages" and name in MESSAGE_CALLS:
                if any(_is_text(arg) for arg in node.args[1:]):
                    found.append(f"line {node.lineno}: messages.{name}()")
            elif (
                isinstance(func, ast.Name)
                and func.id == "ValidationError"
                and node.args
                and _is_text(node.args[0])
            ):
                found.append(f"line {node.lineno}: ValidationError()")
        elif isinstance(node, ast.ClassDef) and any(
            isinstance(b, ast.Attribute | ast.Name)
            and getattr(b, "attr", getattr(b, "id", "")) in ("TextChoices", "IntegerChoices")
            for b in node.bases
        ):
            for item in node.body:
                value = item.value if isinstance(item, ast.Assign) else None
                if (
                    isinstance(value, ast.Tuple)
                    and len(value.elts) == 2
                    and _is_text(value.elts[1])
                ):
                    found.append(f"line {item.lineno}: choice label")
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if (
                    isinstance(item, ast.Assign)
                    and any(isinstance(t, ast.Name) and t.id == "title" for t in item.targets)
                    and _is_text(item.value)
                ):
                    found.append(f"line {item.lineno}: title =")
    return sorted(found, key=lambda line: int(line.split(":")[0].split()[1]))


@pytest.mark.parametrize("path", PYTHON, ids=lambda p: str(p.relative_to(BASE)))
def test_python_interface_strings_are_marked_for_translation(path):
    if str(path.relative_to(BASE)) in MASIVO_ANSWERS:
        pytest.skip("answers as Masivo does, in English")
    assert python_bare_labels(path.read_text()) == []


def test_the_python_check_finds_bare_labels():
    found = python_bare_labels(
        "name = models.CharField(verbose_name='Name')\n"
        "ok = models.CharField(verbose_name=_('Name'))\n"
        "messages.success(request, 'Saved')\n"
        "class Status(models.TextChoices):\n"
        "    DRAFT = 'draft', 'Draft'\n"
        "    SENT = 'sent', _('Sent')\n"
    )
    assert found == [
        "line 1: verbose_name=",
        "line 3: messages.success()",
        "line 5: choice label",
    ]
