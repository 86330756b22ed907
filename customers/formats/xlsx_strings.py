"""A workbook's shared strings (every distinct text; Excel writes each text cell as an
index into them), kept compact.

openpyxl keeps them as a list of Python strings, after an XML tree that holds an emptied
element for each: about 150 bytes a text before the text itself, so a workbook of ten
million short texts costs gigabytes. Here they are the texts' UTF-8 bytes one after another
(the first ``XLSX_SHARED_STRINGS_MEMORY_BYTES`` in memory, the rest in a temporary file)
and where each ends: 4 bytes a text beside its own. A sheet asks for them by index, as
openpyxl's own list.
"""

from __future__ import annotations

import os
import tempfile
from array import array
from collections.abc import Sequence

from openpyxl.xml.constants import SHEET_MAIN_NS
from openpyxl.xml.functions import iterparse  # defusedxml's, when it is installed

from console.messages import FileSize, Message
from customers.formats.base import (
    ERR_XLSX_CELL_TOO_LONG,
    ERR_XLSX_TEXT_TOO_BIG,
    ERR_XLSX_TOO_MANY_TEXTS,
    XLSX_SHARED_STRINGS_MEMORY_BYTES,
    FileReadError,
)
from customers.formats.xlsx_guard import WorkbookLimits, grouped

_SI = f"{{{SHEET_MAIN_NS}}}si"
_T = f"{{{SHEET_MAIN_NS}}}t"
_R = f"{{{SHEET_MAIN_NS}}}r"
_WRITE_BUFFER_BYTES = 1024 * 1024


class SharedStrings(Sequence):
    """Texts appended once, then read by index (``strings[i]``) like a list."""

    def __init__(self, *, memory_bytes: int = XLSX_SHARED_STRINGS_MEMORY_BYTES) -> None:
        self._memory = bytearray()
        self._memory_bytes = memory_bytes
        self._ends = array("I")  # where each text ends; a part is at most 512 MB
        self._file = None
        self.is_spilled = False
        # Where the temporary file starts, in the texts' bytes.
        self._spilled_from = 0
        self._size = 0

    def append(self, text: str) -> None:
        data = text.encode("utf-8", "surrogatepass")
        if self._file is None and self._size + len(data) <= self._memory_bytes:
            self._memory += data
        else:
            if self._file is None:
                self._file = tempfile.TemporaryFile(  # noqa: SIM115 - closed with the table
                    prefix="xlsx-strings-", buffering=_WRITE_BUFFER_BYTES
                )
                self._spilled_from = self._size
                self.is_spilled = True
            self._file.write(data)
        self._size += len(data)
        self._ends.append(self._size)

    def finish(self) -> None:
        """Every text is in: flush what waits for the temporary file."""
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self._ends)
        if not 0 <= index < len(self._ends):
            raise IndexError("shared string index out of range")
        start = self._ends[index - 1] if index else 0
        end = self._ends[index]
        if not self.is_spilled or end <= self._spilled_from:
            data = self._memory[start:end]
        elif self._file is None:
            raise ValueError("the shared strings are closed")
        else:
            data = os.pread(self._file.fileno(), end - start, start - self._spilled_from)
        return data.decode("utf-8", "surrogatepass")


def _text(node) -> str:
    """A shared text stripped of its formatting, as openpyxl's ``Text.content``: its own
    ``<t>`` and the ``<t>`` of each rich text run (phonetic runs left out)."""
    parts = []
    for child in node:
        if child.tag == _T:
            parts.append(child.text or "")
        elif child.tag == _R:
            run = child.find(_T)
            if run is not None:
                parts.append(run.text or "")
    return "".join(parts)


def shared_strings_read(source, *, part: str, limits: WorkbookLimits) -> SharedStrings:
    """The shared strings of ``source`` (``xl/sharedStrings.xml``, a binary stream that
    tells how much of it was read), the tree emptied after each text. Refused: more texts
    than ``limits.texts``; a text longer than a cell (its runs of rich text joined); more
    elements or bytes than ``limits.entry_*`` read since the tree was last emptied."""
    strings = SharedStrings()
    root = None
    depth = elements = emptied_at = 0
    try:
        for event, node in iterparse(source, events=("start", "end")):
            if event == "start":
                depth += 1
                if root is None:
                    root = node
                    continue
                elements += 1
                if elements > limits.entry_elements or (
                    source.tell() - emptied_at > limits.entry_bytes
                ):
                    raise FileReadError(
                        Message.of(
                            ERR_XLSX_TEXT_TOO_BIG,
                            part=part,
                            elements=grouped(limits.entry_elements),
                            size=FileSize(limits.entry_bytes),
                        )
                    )
                continue
            depth -= 1
            if node.tag != _SI:
                continue
            strings.append(_text_of(node, part=part, cell_bytes=limits.cell_bytes))
            if len(strings) > limits.texts:
                raise FileReadError(
                    Message.of(ERR_XLSX_TOO_MANY_TEXTS, part=part, max=grouped(limits.texts))
                )
            if depth == 1:  # a text right under the root: nothing else is held now
                root.clear()
                elements = 0
                emptied_at = source.tell()
        strings.finish()
    except BaseException:
        strings.close()
        raise
    return strings


def _text_of(node, *, part: str, cell_bytes: int) -> str:
    text = _text(node).replace("x005F_", "")
    if len(text) * 4 > cell_bytes and len(text.encode()) > cell_bytes:
        raise FileReadError(Message.of(ERR_XLSX_CELL_TOO_LONG, part=part, max=FileSize(cell_bytes)))
    return text
