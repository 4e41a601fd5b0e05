"""Bencoding (BEP 3), canonical and strict.

``encode`` writes the one canonical form: dictionary keys sorted as raw bytes,
integers without leading zeros. ``decode`` accepts only that form, so
``encode(decode(data)) == data`` for every input it accepts; an infohash computed
from a decoded and re-encoded info dictionary is the hash of the bytes received.
Anything else (unsorted or repeated keys, ``i-0e``, ``i03e``, ``03:abc``, trailing
bytes, too deep, too large) raises :class:`~torrip.errors.TorrentError`.

    >>> encode({"b": [1, b"x"], "a": "é"})
    b'd1:a2:\\xc3\\xa91:bli1e1:xee'
    >>> decode(b"d1:ai-3ee")
    {b'a': -3}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NoReturn, TypeAlias

from torrip.errors import TorrentError

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_ITEMS",
    "DEFAULT_MAX_SIZE",
    "Decoded",
    "Encodable",
    "decode",
    "encode",
]

Decoded: TypeAlias = "int | bytes | list[Decoded] | dict[bytes, Decoded]"
"""What :func:`decode` returns: byte strings stay bytes, dictionary keys are bytes."""

Encodable: TypeAlias = (
    "int | bytes | bytearray | memoryview | str | Sequence[Encodable] "
    "| Mapping[str, Encodable] | Mapping[bytes, Encodable]"
)
"""What :func:`encode` accepts; ``str`` is written as UTF-8 bytes."""

DEFAULT_MAX_SIZE = 64 * 1024 * 1024
DEFAULT_MAX_DEPTH = 64
DEFAULT_MAX_ITEMS = 1_000_000
# An integer of more digits than this is garbage in any torrent (2**64 has 20 digits).
_MAX_INTEGER_DIGITS = 20
_DIGITS = frozenset(b"0123456789")


def encode(value: Encodable) -> bytes:
    """The canonical bencoding of ``value``."""
    parts: list[bytes] = []
    _encode_into(value, parts, 0)
    return b"".join(parts)


def _encode_into(value: Encodable, parts: list[bytes], depth: int) -> None:
    if depth > DEFAULT_MAX_DEPTH:
        raise TorrentError(f"cannot bencode: nesting deeper than {DEFAULT_MAX_DEPTH}")
    if isinstance(value, bool):
        # bool is an int subclass; writing True as i1e would hide a bug in the caller.
        raise TorrentError("cannot bencode a bool")
    if isinstance(value, int):
        parts.append(b"i%de" % value)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        parts.append(b"%d:" % len(raw))
        parts.append(raw)
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        parts.append(b"%d:" % len(raw))
        parts.append(raw)
    elif isinstance(value, Mapping):
        items: dict[bytes, Encodable] = {}
        for key, item in value.items():
            raw_key = key.encode("utf-8") if isinstance(key, str) else key
            if not isinstance(raw_key, bytes):
                raise TorrentError(f"cannot bencode a dictionary key of type {type(key).__name__}")
            if raw_key in items:
                raise TorrentError(f"cannot bencode: key {raw_key!r} appears twice")
            items[raw_key] = item
        parts.append(b"d")
        for raw_key in sorted(items):
            parts.append(b"%d:" % len(raw_key))
            parts.append(raw_key)
            _encode_into(items[raw_key], parts, depth + 1)
        parts.append(b"e")
    elif isinstance(value, Sequence):
        parts.append(b"l")
        for item in value:
            _encode_into(item, parts, depth + 1)
        parts.append(b"e")
    else:
        raise TorrentError(f"cannot bencode a value of type {type(value).__name__}")


def decode(
    data: bytes,
    *,
    max_size: int = DEFAULT_MAX_SIZE,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_items: int = DEFAULT_MAX_ITEMS,
) -> Decoded:
    """Decode one canonical bencoded value that spans all of ``data``.

    ``max_size`` bounds the input in bytes, ``max_depth`` the nesting of lists and
    dictionaries, ``max_items`` the total count of list elements and dictionary entries.
    """
    if len(data) > max_size:
        raise TorrentError(f"bencoded data is {len(data)} bytes, more than the limit {max_size}")
    decoder = _Decoder(bytes(data), max_depth, max_items)
    value = decoder.value(0)
    if decoder.pos != len(data):
        decoder.fail("trailing bytes after the value")
    return value


class _Decoder:
    def __init__(self, data: bytes, max_depth: int, max_items: int) -> None:
        self.data = data
        self.pos = 0
        self.max_depth = max_depth
        self.items_left = max_items

    def fail(self, reason: str, at: int | None = None) -> NoReturn:
        offset = self.pos if at is None else at
        raise TorrentError(f"malformed bencoding at byte {offset}: {reason}")

    def value(self, depth: int) -> Decoded:
        if self.pos >= len(self.data):
            self.fail("data ends where a value should start")
        lead = self.data[self.pos]
        if lead == 0x69:  # i
            return self.integer()
        if lead in _DIGITS:
            return self.string()
        if lead == 0x6C:  # l
            return self.list(depth + 1)
        if lead == 0x64:  # d
            return self.dictionary(depth + 1)
        self.fail(f"unexpected byte {bytes([lead])!r}")

    def integer(self) -> int:
        start = self.pos + 1
        end = self.data.find(b"e", start, start + _MAX_INTEGER_DIGITS + 2)
        if end < 0:
            self.fail("integer without an end, or too long")
        text = self.data[start:end]
        digits = text[1:] if text[:1] == b"-" else text
        if not digits or not _DIGITS.issuperset(digits):
            self.fail(f"integer {text!r} is not a number")
        if digits[:1] == b"0" and (len(digits) > 1 or text[:1] == b"-"):
            self.fail(f"integer {text!r} is not canonical (leading zero or minus zero)")
        self.pos = end + 1
        return int(text)

    def string(self) -> bytes:
        colon = self.data.find(b":", self.pos, self.pos + _MAX_INTEGER_DIGITS + 1)
        if colon < 0:
            self.fail("string length without a colon, or too long")
        prefix = self.data[self.pos : colon]
        if not _DIGITS.issuperset(prefix):
            self.fail(f"string length {prefix!r} is not a number")
        if prefix[:1] == b"0" and len(prefix) > 1:
            self.fail(f"string length {prefix!r} has a leading zero")
        length = int(prefix)
        start = colon + 1
        if start + length > len(self.data):
            self.fail(f"string of {length} bytes runs past the end of the data")
        self.pos = start + length
        return self.data[start : self.pos]

    def count_item(self) -> None:
        self.items_left -= 1
        if self.items_left < 0:
            self.fail("too many list elements and dictionary entries")

    def list(self, depth: int) -> list[Decoded]:
        if depth > self.max_depth:
            self.fail(f"nested deeper than {self.max_depth}")
        self.pos += 1
        result: list[Decoded] = []
        while True:
            if self.pos >= len(self.data):
                self.fail("list without an end")
            if self.data[self.pos] == 0x65:  # e
                self.pos += 1
                return result
            self.count_item()
            result.append(self.value(depth))

    def dictionary(self, depth: int) -> dict[bytes, Decoded]:
        if depth > self.max_depth:
            self.fail(f"nested deeper than {self.max_depth}")
        self.pos += 1
        result: dict[bytes, Decoded] = {}
        previous: bytes | None = None
        while True:
            if self.pos >= len(self.data):
                self.fail("dictionary without an end")
            lead = self.data[self.pos]
            if lead == 0x65:  # e
                self.pos += 1
                return result
            if lead not in _DIGITS:
                self.fail("dictionary key is not a byte string")
            self.count_item()
            key_at = self.pos
            key = self.string()
            if previous is not None and key <= previous:
                reason = "repeated" if key == previous else "out of order"
                self.fail(f"dictionary key {key!r} is {reason}", at=key_at)
            previous = key
            result[key] = self.value(depth)
