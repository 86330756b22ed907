"""Column and value mapping: files in a legacy system's own shape read as the kind's own.

A mapping document (JSON; the format is in docs/MAPPING.md) says, for each field of a
kind, where its value comes from: a column, several joined, a part of one, a constant,
with a value map, a default, a date format and time zone, number separators, a case.

Modules: ``targets`` (the fields of each kind, read from its resource), ``spec`` (the
document checked and parsed, before any file is read), ``compiler`` (the mapping checked
against a file's headers and compiled into one function per field), ``dates`` (date
formats read as strptime reads them, quicker), ``suggest`` (which
column feeds which field, values of choice fields, date formats), ``apply`` (a file read
as a kind, with or without a mapping). Staging applies a
mapping in ``customers.staging``; profiles are stored by ``customers.services.mappings``.
"""

from customers.mapping.apply import HeadersNotMatched, table_mapped
from customers.mapping.compiler import mapping_compile
from customers.mapping.spec import Mapping, MappingError, mapping_parse
from customers.mapping.suggest import (
    CERTAIN,
    LIKELY,
    Suggestion,
    columns_suggest,
    date_format_suggest,
    header_signature,
    headers_are_own,
    values_suggest,
)
from customers.mapping.targets import MAPPING_KINDS, Target, kind_targets

__all__ = [
    "CERTAIN",
    "HeadersNotMatched",
    "LIKELY",
    "MAPPING_KINDS",
    "Mapping",
    "MappingError",
    "Suggestion",
    "Target",
    "columns_suggest",
    "date_format_suggest",
    "header_signature",
    "headers_are_own",
    "kind_targets",
    "mapping_compile",
    "mapping_parse",
    "table_mapped",
    "values_suggest",
]
