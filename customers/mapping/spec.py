"""A mapping document (the JSON an operator writes or the console suggests), checked
before any file is read.

``mapping_parse`` turns the document into a ``Mapping`` of ``FieldRule`` objects, or
raises ``MappingError`` listing every mistake at once: a kind that is not the file's, an
unknown option (a misspelt ``date_fromat``), an unknown target field, a required field
left unmapped, a bad ``strptime`` format or time zone, a constant or a ``values`` target
that the contract refuses. The checks that need the file's headers come when the mapping
is compiled for a file (``customers.mapping.compiler``).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field

from django.utils.translation import gettext_lazy as _

from console.errors import InvalidInput
from console.messages import as_message
from customers.mapping.targets import MAPPING_KINDS, Target, kind_targets

TOP_KEYS = ("kind", "fields", "unmapped", "timezone")
OPTION_KEYS = (
    "column", "join", "separator", "split", "part", "value", "values", "default",
    "date_format", "timezone", "decimal_separator", "thousands_separator", "lower", "upper",
)  # fmt: skip
SOURCE_KEYS = ("column", "join", "split", "value")
NUMBER_SEPARATORS = (".", ",", " ", "'", "\u00a0", "\u202f")
UNMAPPED = ("refuse", "ignore")

ERR_NOT_OBJECT = _("A mapping is a JSON object with “kind” and “fields”.")
ERR_TOP_KEY = _("Unknown key “%(key)s” in the mapping; its keys are %(keys)s.")
ERR_KIND = _("The mapping is for “%(kind)s” files; choose one of %(kinds)s.")
ERR_KIND_OTHER = _("The mapping is for “%(mapping)s” files, but this is a “%(kind)s” file.")
ERR_FIELDS = _("“fields” must be an object: for each field, where its value comes from.")
ERR_UNKNOWN_FIELD = _("“%(field)s” is not a field of %(kind)s files; the fields are %(fields)s.")
ERR_REQUIRED = _("Required field(s) %(fields)s are not mapped.")
ERR_RULE = _(
    "Field “%(field)s”: write a column name or an object with one of “column”, “join”, "
    "“split” or “value”."
)
ERR_OPTION = _("Field “%(field)s”: unknown option “%(option)s”; the options are %(options)s.")
ERR_SOURCES = _("Field “%(field)s”: use only one of “column”, “join”, “split” or “value”.")
ERR_NAME = _("Field “%(field)s”: “%(option)s” must name a column (non-empty text).")
ERR_JOIN = _("Field “%(field)s”: “join” must be a list of column names.")
ERR_TEXT_OPTION = _("Field “%(field)s”: “%(option)s” must be text.")
ERR_PART = _("Field “%(field)s”: “part” must be a whole number from 1.")
ERR_SPLIT_NEEDS = _("Field “%(field)s”: “split” needs a “separator” and a “part”.")
ERR_FLAG = _("Field “%(field)s”: “%(option)s” must be true or false.")
ERR_CASE = _("Field “%(field)s”: choose “lower” or “upper”, not both.")
ERR_VALUES = _(
    "Field “%(field)s”: “values” must be an object from file values to %(field)s values."
)
ERR_REFUSED = _("Field “%(field)s”: %(where)s “%(value)s” is refused: %(error)s.")
ERR_ONLY_DATES = _(
    "Field “%(field)s”: “%(option)s” applies only to dates, and this field is not one."
)
ERR_ONLY_NUMBERS = _("Field “%(field)s”: “%(option)s” applies only to numbers.")
ERR_DATE_FORMAT = _(
    "Field “%(field)s”: “%(format)s” is not a date format Python's strptime reads (for "
    "example %%d/%%m/%%Y %%H:%%M:%%S)."
)
ERR_TIME_ZONE = _("“%(zone)s” is not a time zone name such as America/Bogota.")
ERR_SEPARATOR = _(
    "Field “%(field)s”: “%(option)s” must be one of . , ' or a space (a no-break one too), "
    "and the two separators must differ (the decimal one is the point unless named)."
)
ERR_FIELD = _("Field “%(field)s”: %(problem)s")
ERR_SPLIT_SEPARATOR = _("Field “%(field)s”: a “split” needs a non-empty “separator”.")
ERR_UNMAPPED = _("“unmapped” is “refuse” or “ignore”.")


class MappingError(InvalidInput):
    """A mapping that cannot be used, with every reason (``messages``), each also kept
    untranslated where it was given as a ``Message`` or a message constant
    (``untranslated``), for a background upload's later readers."""

    def __init__(self, messages: list) -> None:
        self.untranslated = [as_message(message) for message in messages]
        super().__init__([str(message) for message in self.untranslated], code="mapping")


@dataclass(frozen=True)
class FieldRule:
    """Where one target field's value comes from, and how it is transformed."""

    target: Target
    columns: tuple[str, ...] = ()  # the file's headers read (one, or several for join)
    split_part: int = 0  # 0: not a split
    separator: str = " "
    constant: object = None
    has_constant: bool = False
    values: dict[str, str] | None = None
    default: object = None
    date_format: str = ""
    time_zone: str = ""
    decimal_separator: str = ""
    thousands_separator: str = ""
    case: str = ""  # "lower", "upper" or ""


@dataclass(frozen=True)
class Mapping:
    kind: str
    rules: dict[str, FieldRule]
    unmapped: str = "refuse"
    time_zone: str = ""
    document: dict = field(default_factory=dict, compare=False)


def _quoted(names) -> str:
    return ", ".join(f"“{n}”" for n in names)


def _time_zone_problem(name) -> str | None:
    try:
        zoneinfo.ZoneInfo(str(name))
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        return str(ERR_TIME_ZONE % {"zone": name})
    return None


def date_format_is_valid(fmt: str) -> bool:
    """``fmt`` is a strptime format that reads back what it writes."""
    if not isinstance(fmt, str) or "%" not in fmt:
        return False
    sample = dt.datetime(2001, 12, 31, 23, 58, 59, tzinfo=dt.UTC)
    try:
        dt.datetime.strptime(sample.strftime(fmt), fmt)  # noqa: DTZ007 - only checks the format
    except (ValueError, TypeError):
        return False
    return True


def _target_refusal(target: Target, value) -> str | None:
    """Why the contract refuses ``value`` for ``target`` (as a file cell), or None."""
    try:
        target.widget.clean(value)
    except (ValueError, TypeError) as exc:
        return str(exc.args[0] if exc.args else exc)
    return None


def _source(name: str, spec: dict, problems: list) -> dict:
    """The rule's source: ``columns``, ``split_part``, ``constant``."""
    given = [key for key in SOURCE_KEYS if key in spec]
    if len(given) != 1:
        problems.append(ERR_SOURCES % {"field": name} if given else ERR_RULE % {"field": name})
        return {}
    key = given[0]
    value = spec[key]
    if key == "value":
        return {"constant": value, "has_constant": True}
    if key == "join":
        if not isinstance(value, list) or not value or not all(_is_name(v) for v in value):
            problems.append(ERR_JOIN % {"field": name})
            return {}
        return {"columns": tuple(value)}
    if not _is_name(value):
        problems.append(ERR_NAME % {"field": name, "option": key})
        return {}
    if key == "column":
        return {"columns": (value,)}
    part = spec.get("part")
    if "separator" not in spec or part is None:
        problems.append(ERR_SPLIT_NEEDS % {"field": name})
        return {}
    if not isinstance(spec["separator"], str) or not spec["separator"]:
        problems.append(ERR_SPLIT_SEPARATOR % {"field": name})
        return {}
    if not isinstance(part, int) or isinstance(part, bool) or part < 1:
        problems.append(ERR_PART % {"field": name})
        return {}
    return {"columns": (value,), "split_part": part}


def _is_name(value) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _text_options(name: str, spec: dict, problems: list) -> dict:
    found = {}
    for option, attribute in (
        ("separator", "separator"),
        ("date_format", "date_format"),
        ("timezone", "time_zone"),
        ("decimal_separator", "decimal_separator"),
        ("thousands_separator", "thousands_separator"),
    ):
        if option in spec:
            if isinstance(spec[option], str) and (spec[option] or option == "separator"):
                found[attribute] = spec[option]
            else:
                problems.append(ERR_TEXT_OPTION % {"field": name, "option": option})
    for flag in ("lower", "upper"):
        if flag in spec and not isinstance(spec[flag], bool):
            problems.append(ERR_FLAG % {"field": name, "option": flag})
    if spec.get("lower") is True and spec.get("upper") is True:
        problems.append(ERR_CASE % {"field": name})
    found["case"] = next((flag for flag in ("lower", "upper") if spec.get(flag) is True), "")
    return found


def _check_kind_options(target: Target, options: dict, problems: list) -> None:
    name = target.name
    for option, attribute in (("date_format", "date_format"), ("timezone", "time_zone")):
        if options.get(attribute) and not target.is_date:
            problems.append(ERR_ONLY_DATES % {"field": name, "option": option})
    fmt = options.get("date_format")
    if fmt and target.is_date and not date_format_is_valid(fmt):
        problems.append(ERR_DATE_FORMAT % {"field": name, "format": fmt})
    if options.get("time_zone") and (problem := _time_zone_problem(options["time_zone"])):
        problems.append(ERR_FIELD % {"field": name, "problem": problem})
    # An unnamed decimal separator is the point: "." alone as thousands would be ambiguous.
    separators = [options.get("decimal_separator") or ".", options.get("thousands_separator", "")]
    given = [options.get(k, "") for k in ("decimal_separator", "thousands_separator")]
    for option, value in zip(("decimal_separator", "thousands_separator"), given, strict=True):
        if not value:
            continue
        if not target.is_number:
            problems.append(ERR_ONLY_NUMBERS % {"field": name, "option": option})
        elif value not in NUMBER_SEPARATORS or separators[0] == separators[1]:
            problems.append(ERR_SEPARATOR % {"field": name, "option": option})


def _check_constants(target: Target, spec: dict, problems: list) -> dict | None:
    """``values``, ``default`` and ``value`` are written in the target's own form: the
    contract must take each of them. Returns the ``values`` map."""
    name = target.name
    values = spec.get("values")
    if values is not None and (
        not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values())
    ):
        problems.append(ERR_VALUES % {"field": name})
        values = None
    candidates = [(_("the value"), spec["value"])] if "value" in spec else []
    if "default" in spec:
        candidates.append((_("the default"), spec["default"]))
    candidates += [(_("the mapped value"), v) for v in (values or {}).values()]
    for where, value in candidates:
        if (error := _target_refusal(target, value)) is not None:
            problems.append(
                ERR_REFUSED % {"field": name, "where": where, "value": value, "error": error}
            )
    return values


def _rule(target: Target, spec, problems: list) -> FieldRule | None:
    name = target.name
    if isinstance(spec, str):
        spec = {"column": spec}
    if not isinstance(spec, dict):
        problems.append(ERR_RULE % {"field": name})
        return None
    unknown = [key for key in spec if key not in OPTION_KEYS]
    for option in unknown:
        problems.append(
            ERR_OPTION % {"field": name, "option": option, "options": _quoted(OPTION_KEYS)}
        )
    before = len(problems)
    # A misspelt source ("colum") is reported once, as the unknown option it is.
    is_misspelt = unknown and not any(key in spec for key in SOURCE_KEYS)
    source = {} if is_misspelt else _source(name, spec, problems)
    options = _text_options(name, spec, problems)
    _check_kind_options(target, options, problems)
    values = _check_constants(target, spec, problems)
    if unknown or len(problems) > before:
        return None
    keys = {str(k).strip(): v for k, v in values.items()} if values is not None else None
    return FieldRule(target=target, values=keys, default=spec.get("default"), **source, **options)


def mapping_parse(document, *, kind: str | None = None) -> Mapping:
    """Check a mapping document (for files of ``kind``, when given) and return it parsed."""
    if not isinstance(document, dict):
        raise MappingError([ERR_NOT_OBJECT])
    problems: list = [
        ERR_TOP_KEY % {"key": key, "keys": _quoted(TOP_KEYS)}
        for key in document
        if key not in TOP_KEYS
    ]
    mapping_kind = document.get("kind")
    if mapping_kind not in MAPPING_KINDS:
        raise MappingError(
            [*problems, ERR_KIND % {"kind": mapping_kind, "kinds": _quoted(MAPPING_KINDS)}]
        )
    if kind is not None and kind != mapping_kind:
        problems.append(ERR_KIND_OTHER % {"mapping": mapping_kind, "kind": kind})
    fields = document.get("fields")
    if not isinstance(fields, dict):
        raise MappingError([*problems, ERR_FIELDS])
    targets = kind_targets(mapping_kind)
    rules = {}
    for name, spec in fields.items():
        if name not in targets:
            problems.append(
                ERR_UNKNOWN_FIELD
                % {"field": name, "kind": mapping_kind, "fields": _quoted(targets)}
            )
        elif (rule := _rule(targets[name], spec, problems)) is not None:
            rules[name] = rule
    missing = [name for name, target in targets.items() if target.required and name not in fields]
    if missing:
        problems.append(ERR_REQUIRED % {"fields": _quoted(missing)})
    unmapped = document.get("unmapped", "refuse")
    if unmapped not in UNMAPPED:
        problems.append(ERR_UNMAPPED)
    time_zone = document.get("timezone", "")
    if time_zone and (problem := _time_zone_problem(time_zone)):
        problems.append(problem)
    if problems:
        raise MappingError(problems)
    ordered = {name: rules[name] for name in targets if name in rules}
    return Mapping(
        kind=mapping_kind, rules=ordered, unmapped=unmapped, time_zone=time_zone, document=document
    )
