"""Where each key of a file first appears, in 16 bytes a slot instead of a dict's hundred.

A file's checks across rows ask of every row: has this id (this email, this customer and
period) been seen before, and at which row? A dict of the keys answers, but holds every
key's text and two Python objects per row: about 150 bytes a row, 150 MB for a million
customers, and a customers file asks it twice (ids and emails).

``FirstRows`` is an open-addressing hash table over three ``array`` columns: the key's
64-bit hash, a second, independent 32-bit hash of it, and the row where it first
appeared. A key is never stored: two keys count as the same when both hashes match, which
two different keys do with a chance of about one in 2**96 (for a file of a million keys,
about one in 10**17 that any two of them are taken for one another), far below the odds
of the machine miscounting. The table doubles when two thirds full, so it costs 16 to 48
bytes a key (32 MB for a million). The hashes are Python's own (``hash``, salted per
process): the table lives and dies with the reading of one file.

The seam: ``first(key, row)`` is a pure question over the table; tests drive it with keys
and rows alone.
"""

from __future__ import annotations

from array import array

_INITIAL_SLOTS = 1 << 12
# A second hash of a key is the hash of the key with this after it, cut to 32 bits.
_SALT = "\x1f"
_LOW_32 = 0xFFFFFFFF


class FirstRows:
    """Key -> the row where it first appeared (row numbers are 1 or more)."""

    def __init__(self, slots: int = _INITIAL_SLOTS) -> None:
        if slots & (slots - 1):
            raise ValueError("slots must be a power of two")
        self._hashes = array("q", [0]) * slots
        self._checks = array("I", [0]) * slots
        self._rows = array("i", [0]) * slots  # 0: an empty slot
        self._mask = slots - 1
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def first(self, key: str, row: int) -> int:
        """The row where ``key`` first appeared: ``row`` itself when it is new (it is then
        remembered), else the earlier one."""
        key_hash = hash(key)
        check = hash(key + _SALT) & _LOW_32
        hashes, checks, rows, mask = self._hashes, self._checks, self._rows, self._mask
        slot = key_hash & mask
        while True:
            found = rows[slot]
            if not found:
                break
            if hashes[slot] == key_hash and checks[slot] == check:
                return found
            slot = (slot + 1) & mask
        hashes[slot], checks[slot], rows[slot] = key_hash, check, row
        self._count += 1
        if 3 * self._count > 2 * mask:
            self._grow()
        return row

    def _grow(self) -> None:
        old = (self._hashes, self._checks, self._rows)
        slots = 2 * (self._mask + 1)
        self._hashes = hashes = array("q", [0]) * slots
        self._checks = checks = array("I", [0]) * slots
        self._rows = rows = array("i", [0]) * slots
        self._mask = mask = slots - 1
        for key_hash, check, row in zip(*old, strict=True):
            if not row:
                continue
            slot = key_hash & mask
            while rows[slot]:
                slot = (slot + 1) & mask
            hashes[slot], checks[slot], rows[slot] = key_hash, check, row
