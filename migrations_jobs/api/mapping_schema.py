"""The mapping document's shape in the OpenAPI schema (the API takes and answers it as
JSON; ``customers.mapping.spec`` is what checks it)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from customers.mapping import MAPPING_KINDS

_TEXT = {"type": "string"}
MAPPING_DOCUMENT_SCHEMA = {
    "type": "object",
    "description": (
        "A mapping: for each field of the kind, where its value comes from in the file "
        "(docs/MAPPING.md describes every option)."
    ),
    "required": ["kind", "fields"],
    "properties": {
        "kind": {"type": "string", "enum": list(MAPPING_KINDS)},
        "fields": {
            "type": "object",
            "description": "By field of the kind: a column's header, or a rule.",
            "additionalProperties": {
                "oneOf": [
                    {"type": "string", "description": "The header of the column to read."},
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "column": _TEXT,
                            "join": {"type": "array", "items": _TEXT, "minItems": 1},
                            "separator": _TEXT,
                            "split": _TEXT,
                            "part": {"type": "integer", "minimum": 1},
                            "value": {},
                            "values": {"type": "object", "additionalProperties": _TEXT},
                            "default": {},
                            "date_format": _TEXT,
                            "timezone": _TEXT,
                            "decimal_separator": _TEXT,
                            "thousands_separator": _TEXT,
                            "lower": {"type": "boolean"},
                            "upper": {"type": "boolean"},
                        },
                    },
                ]
            },
        },
        "unmapped": {"type": "string", "enum": ["refuse", "ignore"], "default": "refuse"},
        "timezone": {"type": "string", "description": "IANA zone of naive date-times."},
    },
}


@extend_schema_field(MAPPING_DOCUMENT_SCHEMA)
class MappingDocumentField(serializers.JSONField):
    """A mapping document, documented in OpenAPI with its shape."""
