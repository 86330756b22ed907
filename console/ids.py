"""What an id is, wherever one is read from text: an address (``/api/jobs/<id>/``), a
filter (``?batch=``), a lookup in the admin (``?batch=``, ``?job=``).

Every primary key of the console is a 64-bit integer counting from 1 (``BigAutoField``, on
SQLite and PostgreSQL alike). A longer number names nothing, and the database cannot even
be asked about it: SQLite raises ``OverflowError`` and PostgreSQL ``DataError`` for a
value its column cannot hold. So text is turned into an id here, once, and a number out of
range is no id: an address that holds one names no endpoint (404), a filter refuses it
(400). (The admin's lookups compare with any integer column, so they ask the database for
the column's own range: ``customers.admin.mixins.IdLookupsChangeList``.)

Nothing here imports Django: the settings read ``ID_SCHEMA``.
"""

from __future__ import annotations

ID_MIN = 1
ID_MAX = 2**63 - 1
ID_DIGITS = len(str(ID_MAX))

# An id as OpenAPI describes it (the schema's path parameters).
ID_SCHEMA = {"type": "integer", "format": "int64", "minimum": ID_MIN, "maximum": ID_MAX}


def id_parse(text: str | None) -> int | None:
    """The id ``text`` writes (ASCII digits, 1 to ``ID_MAX``), or None."""
    if not text or not text.isascii() or not text.isdigit() or len(text.lstrip("0")) > ID_DIGITS:
        return None
    value = int(text)
    return value if ID_MIN <= value <= ID_MAX else None


class IdConverter:
    """The ``<id:name>`` path converter: an address matches only with an id in range, so
    any other number falls through to the API's JSON 404."""

    regex = "[0-9]+"

    def to_python(self, value: str) -> int:
        found = id_parse(value)
        if found is None:
            raise ValueError(value)
        return found

    def to_url(self, value: int | str) -> str:
        return str(int(value))
