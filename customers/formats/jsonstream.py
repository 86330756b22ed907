"""JSON read a slice at a time: the rows of a list without the whole document in memory.

A JSON file of rows is one array of objects. ``json.loads`` would hold its whole text and
every row's dict at once; here the text is read in slices and each element of the array is
decoded on its own by the standard library's decoder (``json.JSONDecoder.raw_decode``, the
scanner ``json.loads`` uses), so only the slice being read and the element being decoded
are held. Any other document (an object, a number) is decoded whole, as before.

Why it is clever: an element is decoded from the text read so far, and a slice may end in
the middle of one. When decoding fails, or ends too near the end of the text read, more
is read and the element is decoded again, unless the failure is one more text could not
cure: it lies at least ``CUT_MARGIN`` characters before the end of the text read (no JSON
token looks that far ahead), and it is not an unterminated string (whose error points
where the string began). A value is taken only when it ends that far before the end of
the text read too (a number ``1.5`` cut after ``1.`` decodes as ``1``). Between elements
(``[``, ``,``, ``]``, whitespace, anything after the array) the grammar follows the
standard library's scanner, so an invalid file fails with the message, line and column
``json.loads`` gives for the same text; the seam is ``JSONText`` over any ``read(size)``
function (tests/customers/test_streaming.py compares both on the same texts).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator

# JSON's own whitespace (str.isspace() is wider).
_WHITESPACE = re.compile(r"[ \t\n\r]*")
# Characters of text read per slice.
SLICE_CHARS = 1 << 20
# How far before the end of the text read a decoding error is surely not the cut.
CUT_MARGIN = 64
_BOM = "\ufeff"


def _may_be_cut(error: json.JSONDecodeError, length: int) -> bool:
    return error.msg.startswith("Unterminated string") or error.pos >= length - CUT_MARGIN


class JSONText:
    """One JSON document read through ``read(size)`` (a text stream's ``read``).

    ``is_list()`` says whether the document is an array; then ``rows()`` yields its
    elements one by one, else ``document()`` gives the whole value. Errors are
    ``json.JSONDecodeError`` placed in the whole text (``RecursionError`` and
    ``ValueError`` pass through, as from ``json.loads``)."""

    def __init__(self, read: Callable[[int], str], *, slice_chars: int = SLICE_CHARS) -> None:
        self._read = read
        self._slice_chars = slice_chars
        self._decoder = json.JSONDecoder()
        self._text = ""
        self._at = 0  # the position in ``_text`` reached
        self._is_read = False  # the end of the file is in ``_text``
        # Where ``_text[0]`` is in the whole text: offset, line, characters before it on its line.
        self._offset, self._line, self._column = 0, 1, 0

    def is_list(self) -> bool:
        if self._peek(1) == _BOM:
            raise self._error("Unexpected UTF-8 BOM (decode using utf-8-sig)", 0)
        return self._next_char() == "["

    def rows(self) -> Iterator[object]:
        """Each element of the array, then the check that nothing follows it."""
        self._at += 1  # the "["
        if self._next_char() == "]":
            self._at += 1
        else:
            while True:
                yield self._value()
                char = self._next_char()
                if char == "]":
                    self._at += 1
                    break
                if char != ",":
                    raise self._error("Expecting ',' delimiter", self._at)
                self._at += 1
                self._next_char()
        self._end()

    def document(self) -> object:
        value = self._value()
        self._end()
        return value

    # --- reading -----------------------------------------------------------------------------

    def _more(self) -> bool:
        """Drop what was read, read the next slice (at least as long as what is held, so a
        long element is read in doubling slices); False at the end of the file."""
        if self._is_read:
            return False
        at, text = self._at, self._text
        newlines = text.count("\n", 0, at)
        if newlines:
            self._line += newlines
            self._column = at - text.rfind("\n", 0, at) - 1
        else:
            self._column += at
        self._offset += at
        held = text[at:]
        piece = self._read(max(self._slice_chars, len(held)))
        self._text, self._at = held + piece, 0
        self._is_read = not piece
        return bool(piece)

    def _peek(self, size: int) -> str:
        while len(self._text) - self._at < size and self._more():
            pass
        return self._text[self._at : self._at + size]

    def _next_char(self) -> str:
        """The next character after JSON whitespace, not taken ("" at the end)."""
        while True:
            self._at = _WHITESPACE.match(self._text, self._at).end()
            if self._at < len(self._text):
                return self._text[self._at]
            if not self._more():
                return ""

    def _value(self) -> object:
        """The value at the position reached, reading on as long as it may be cut."""
        while True:
            try:
                value, end = self._decoder.raw_decode(self._text, self._at)
            except json.JSONDecodeError as exc:
                if self._is_read or not _may_be_cut(exc, len(self._text)):
                    raise self._error(exc.msg, exc.pos) from None
            else:
                # A number may end where the slice does ("1.5" read as "1."): so may any
                # value ending too near the end of the text read.
                if end < len(self._text) - CUT_MARGIN or self._is_read:
                    self._at = end
                    return value
            self._more()

    def _end(self) -> None:
        if self._next_char():
            raise self._error("Extra data", self._at)

    def _error(self, message: str, at: int) -> json.JSONDecodeError:
        """``message`` at position ``at`` of the text held, placed in the whole text as
        ``json.loads`` places it."""
        newlines = self._text.count("\n", 0, at)
        line = self._line + newlines
        column = at - self._text.rfind("\n", 0, at) if newlines else self._column + at + 1
        char = self._offset + at
        error = json.JSONDecodeError(message, "", 0)
        error.pos, error.lineno, error.colno = char, line, column
        error.args = (f"{message}: line {line} column {column} (char {char})",)
        return error
