"""The mapping step's form: one row per field of the kind (a column of the file, joined
with a second one for text, a fixed value; the file's values of a choice field mapped to
the contract's; a date format and time zone; number separators), the mapping as JSON for
what the rows cannot say, and saving it as a profile.

``MappingStepForm.document()`` turns the choices into a mapping document; ``initial_from``
turns a document (a profile, a suggestion) back into the rows' initial values.
"""

from __future__ import annotations

import json

from django import forms
from django.utils.translation import gettext_lazy as _

from customers.mapping import CERTAIN, Suggestion, Target, kind_targets, values_suggest
from customers.mapping.survey import ColumnSurvey
from customers.models import MappingProfile

NOT_IN_FILE = ("", _("— not in the file —"))
DECIMALS = [(".", _("point: 1234.50")), (",", _("comma: 1234,50"))]
THOUSANDS = [
    ("", _("none")),
    (".", _("point: 1.234")),
    (",", _("comma: 1,234")),
    (" ", _("space: 1 234")),
    ("'", _("apostrophe: 1'234")),
]
HIDDEN = ("batch", "resource", "format", "import_file_name", "original_file_name")
ERR_JSON = _("The mapping is not valid JSON: %(error)s.")


class FieldRow:
    """What the template shows for one target field."""

    def __init__(self, form: MappingStepForm, target: Target, survey: dict[str, ColumnSurvey]):
        self.target = target
        self.column = form[f"col__{target.name}"]
        self.join = form[f"join__{target.name}"] if f"join__{target.name}" in form.fields else None
        self.fixed = form[f"fixed__{target.name}"]
        self.lower = form[f"lower__{target.name}"] if target.name == "email" else None
        self.date_format = form[f"fmt__{target.name}"] if target.is_date else None
        self.time_zone = form[f"tz__{target.name}"] if target.is_date else None
        self.decimal = form[f"dec__{target.name}"] if target.is_number else None
        self.thousands = form[f"thou__{target.name}"] if target.is_number else None
        self.hint = form.hints.get(target.name)
        chosen = form.chosen_column(target.name)
        self.survey = survey.get(chosen) if chosen else None
        self.values = form.value_rows(target, self.survey) if target.type == "choice" else []
        self.ambiguous = bool(
            target.is_date and self.survey and self.survey.date_format().ambiguous
        )


class MappingStepForm(forms.Form):
    """Built for one kind and one file's headers (``columns``)."""

    batch = forms.IntegerField(widget=forms.HiddenInput)
    resource = forms.CharField(widget=forms.HiddenInput)
    format = forms.CharField(widget=forms.HiddenInput)
    import_file_name = forms.CharField(widget=forms.HiddenInput)
    original_file_name = forms.CharField(widget=forms.HiddenInput)
    profile = forms.ModelChoiceField(
        queryset=MappingProfile.objects.none(),
        required=False,
        label=_("Start from a saved profile"),
    )
    ignore_unmapped = forms.BooleanField(
        required=False, initial=True, label=_("Leave out the columns no field uses")
    )
    save_as = forms.CharField(
        required=False,
        max_length=120,
        label=_("Save as a profile named"),
        help_text=_("Optional. The next file with the same columns is then mapped this way."),
    )
    use_json = forms.BooleanField(
        required=False, label=_("Use the mapping written below instead of the choices above")
    )
    document_json = forms.CharField(
        required=False,
        label=_("Mapping (JSON)"),
        widget=forms.Textarea(
            attrs={"rows": 12, "spellcheck": "false", "class": "vLargeTextField"}
        ),
    )

    def __init__(
        self,
        *args,
        kind: str,
        columns: list[str],
        surveys: list[ColumnSurvey],
        time_zone: str,
        hints: dict[str, str] | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.kind = kind
        self.columns = columns
        self.surveys = {s.header: s for s in surveys}
        self.time_zone = time_zone
        self.hints = hints or {}
        self.targets = kind_targets(kind)
        self.fields["profile"].queryset = MappingProfile.objects.filter(kind=kind)
        choices = [NOT_IN_FILE, *((c, c) for c in columns if c)]
        for name, target in self.targets.items():
            self._add_field_row(name, target, choices)

    def _add_field_row(self, name: str, target: Target, choices: list) -> None:
        label = f"{name} *" if target.required else name
        self.fields[f"col__{name}"] = forms.ChoiceField(
            choices=choices, required=False, label=label
        )
        if target.type == "text":
            self.fields[f"join__{name}"] = forms.ChoiceField(
                choices=choices, required=False, label=_("joined with")
            )
        self.fields[f"fixed__{name}"] = forms.CharField(
            required=False, max_length=255, label=_("or the same value for every row")
        )
        if name == "email":
            self.fields[f"lower__{name}"] = forms.BooleanField(
                required=False, label=_("in lower case")
            )
        if target.is_date:
            self.fields[f"fmt__{name}"] = forms.CharField(
                required=False, max_length=64, label=_("date format (strptime)")
            )
            self.fields[f"tz__{name}"] = forms.CharField(
                required=False, max_length=64, label=_("time zone"), initial=self.time_zone
            )
        if target.is_number:
            self.fields[f"dec__{name}"] = forms.ChoiceField(
                choices=DECIMALS, required=False, label=_("decimal separator")
            )
            self.fields[f"thou__{name}"] = forms.ChoiceField(
                choices=THOUSANDS, required=False, label=_("thousands separator")
            )
        if target.type == "choice":
            for value in self._choice_sources(name):
                self.fields[value_field(name, value)] = forms.ChoiceField(
                    choices=[("", "—"), *((c, c) for c in target.choices())],
                    required=False,
                    label=value,
                    initial=_value_initial(target, value),
                )

    def _choice_sources(self, name: str) -> list[str]:
        """The file values of a choice field to map: those found in the chosen column,
        then any the profile or the page already maps (seen further down the file)."""
        survey = self.surveys.get(self.chosen_column(name) or "")
        sources = [v for v, _n in survey.distinct.most_common()] if survey else []
        prefix = f"val__{name}__"
        given = self.data if self.is_bound else self.initial
        for key in given:
            if key.startswith(prefix) and _is_hex(key[len(prefix) :]):
                value = bytes.fromhex(key[len(prefix) :]).decode()
                if value not in sources:
                    sources.append(value)
        return sources

    def chosen_column(self, name: str) -> str:
        key = f"col__{name}"
        if self.is_bound:
            return self.data.get(self.add_prefix(key), "")
        return self.initial.get(key, "")

    def value_rows(self, target: Target, survey: ColumnSurvey | None) -> list:
        counts = survey.distinct if survey is not None else {}
        return [
            (value, counts.get(value, 0), self[value_field(target.name, value)])
            for value in self._choice_sources(target.name)
        ]

    def rows(self) -> list[FieldRow]:
        return [FieldRow(self, target, self.surveys) for target in self.targets.values()]

    def hidden_state(self) -> list:
        return [self[name] for name in HIDDEN]

    def unused_columns(self) -> list[str]:
        used = set()
        for name in self.targets:
            for key in (f"col__{name}", f"join__{name}"):
                value = self.data.get(key) if self.is_bound else self.initial.get(key)
                if value:
                    used.add(value)
        return [c for c in self.columns if c and c not in used]

    def document(self) -> dict:
        """The mapping the rows (or, when chosen, the JSON) describe. Call after
        ``is_valid()``; a JSON that does not parse is a form error."""
        data = self.cleaned_data
        if data.get("use_json"):
            try:
                return json.loads(data.get("document_json") or "")
            except ValueError as exc:
                self.add_error("document_json", ERR_JSON % {"error": exc})
                return {}
        fields = {}
        for name, target in self.targets.items():
            rule = self._rule(name, target)
            if rule is not None:
                fields[name] = rule
        unmapped = "ignore" if data.get("ignore_unmapped") else "refuse"
        return {"kind": self.kind, "fields": fields, "unmapped": unmapped}

    def _rule(self, name: str, target: Target) -> dict | str | None:
        data = self.cleaned_data
        fixed = (data.get(f"fixed__{name}") or "").strip()
        if fixed:
            return {"value": fixed}
        column = data.get(f"col__{name}")
        if not column:
            return None
        joined = data.get(f"join__{name}")
        rule: dict = (
            {"join": [column, joined]} if joined and joined != column else {"column": column}
        )
        if data.get(f"lower__{name}"):
            rule["lower"] = True
        if target.is_date:
            if fmt := (data.get(f"fmt__{name}") or "").strip():
                rule["date_format"] = fmt
            zone = (data.get(f"tz__{name}") or "").strip()
            if zone and zone != self.time_zone:
                rule["timezone"] = zone
        if target.is_number:
            if (decimal := data.get(f"dec__{name}")) and decimal != ".":
                rule["decimal_separator"] = decimal
            if thousands := data.get(f"thou__{name}"):
                rule["thousands_separator"] = thousands
        if target.type == "choice" and (values := self._values(name)):
            rule["values"] = values
        return rule["column"] if list(rule) == ["column"] else rule

    def _values(self, name: str) -> dict[str, str]:
        """The file's values mapped to the contract's; none when every value is kept."""
        prefix = f"val__{name}__"
        pairs = {
            bytes.fromhex(key[len(prefix) :]).decode(): target
            for key, target in self.data.items()
            if key.startswith(prefix) and target and _is_hex(key[len(prefix) :])
        }
        return pairs if any(source != target for source, target in pairs.items()) else {}


def value_field(name: str, value: str) -> str:
    """The form field of one file value of a choice field (the value, hex-encoded)."""
    return f"val__{name}__{value.encode().hex()}"


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text).decode()
    except (ValueError, UnicodeDecodeError):
        return False
    return True


def _value_initial(target: Target, value: str) -> str:
    exact = {c.casefold(): c for c in target.choices()}.get(value.casefold())
    return exact or values_suggest(target=target, found={value: 1}).get(value, "")


def initial_from(*, document: dict, suggestion: Suggestion | None, time_zone: str) -> dict:
    """The rows' initial values: from a mapping document (a profile) when given, else the
    certain suggestions; what the rows cannot show goes to the JSON, with ``use_json``."""
    initial: dict = {"document_json": json.dumps(document, indent=2, ensure_ascii=False)}
    initial["ignore_unmapped"] = document.get("unmapped", "refuse") == "ignore" or not document
    representable = True
    for name, rule in (document.get("fields") or {}).items():
        rule = {"column": rule} if isinstance(rule, str) else dict(rule)
        representable &= _rule_initial(initial, name, rule, time_zone)
    if suggestion is not None and not document.get("fields"):
        for name, match in suggestion.matches.items():
            if match.certainty == CERTAIN:
                initial[f"col__{name}"] = match.column
    initial["use_json"] = not representable
    return initial


def _rule_initial(initial: dict, name: str, rule: dict, time_zone: str) -> bool:
    """Fill ``initial`` from one rule; False when the rows cannot show all of it."""
    shown = {"column", "join", "separator", "value", "lower", "date_format", "timezone",
             "decimal_separator", "thousands_separator", "values"}  # fmt: skip
    if "column" in rule:
        initial[f"col__{name}"] = rule["column"]
    elif "join" in rule and len(rule["join"]) == 2 and rule.get("separator", " ") == " ":
        initial[f"col__{name}"], initial[f"join__{name}"] = rule["join"]
    elif "value" in rule:
        initial[f"fixed__{name}"] = str(rule["value"])
    else:
        return False
    initial[f"lower__{name}"] = bool(rule.get("lower"))
    initial[f"fmt__{name}"] = rule.get("date_format", "")
    initial[f"tz__{name}"] = rule.get("timezone", time_zone)
    initial[f"dec__{name}"] = rule.get("decimal_separator", ".")
    initial[f"thou__{name}"] = rule.get("thousands_separator", "")
    for source, target in (rule.get("values") or {}).items():
        initial[value_field(name, source)] = target
    return set(rule) <= shown
