"""A wheel's zip directory, read in one pass, as zipfile reads it.

``zipfile.ZipFile`` makes a ``ZipInfo`` of each member as it opens a zip: 6 us a member,
which was a sixth of unpacking jedi's 5,625 files (36 ms of 200 ms). ``read_entries`` reads
the same central directory into plain tuples, for the zips wheels nearly always are: one
disk, no ZIP64 record or field, no comment, nothing before the first member. For any other
zip it gives None, and the caller asks zipfile, whose reading of the rest is the reference:
every entry given here is the one zipfile would make of it.

Usage::

    entries = read_entries(source.at, size)       # None: let zipfile read this one
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import NamedTuple, Protocol

__all__ = ["Entry", "ZipEntry", "read_entries"]

# The end of central directory record, and its signature.
_END = struct.Struct("<4s4H2LH")
_END_SIGNATURE = b"PK\x05\x06"
# The ZIP64 end of central directory locator, which sits right before it.
_LOCATOR_SIZE = 20
_LOCATOR_SIGNATURE = b"PK\x06\x07"
# A central directory entry (zipfile's ``structCentralDir``).
_ENTRY = struct.Struct("<4s4B4HL2L5H2L")
_ENTRY_SIGNATURE = b"PK\x01\x02"
_EXTRA_HEADER = struct.Struct("<2H")
_ZIP64_EXTRA = 0x0001
_FLAG_UTF8 = 0x800
# What a field holds when the real value is in a ZIP64 record or extra field.
_ZIP64_SHORT = 0xFFFF
_ZIP64_LONG = 0xFFFFFFFF
# zipfile's MAX_EXTRACT_VERSION: it refuses entries that need a later version.
_MAX_EXTRACT_VERSION = 63


class ZipEntry(Protocol):
    """What is read of a member: zipfile's ``ZipInfo`` and ``Entry`` both have it."""

    @property
    def filename(self) -> str: ...

    @property
    def orig_filename(self) -> str: ...

    @property
    def header_offset(self) -> int: ...

    @property
    def compress_size(self) -> int: ...

    @property
    def file_size(self) -> int: ...

    @property
    def compress_type(self) -> int: ...

    @property
    def flag_bits(self) -> int: ...

    @property
    def external_attr(self) -> int: ...

    def is_dir(self) -> bool: ...


class Entry(NamedTuple):
    """A member as the central directory lists it, named as zipfile's ``ZipInfo`` names it."""

    filename: str
    orig_filename: str
    header_offset: int
    compress_size: int
    file_size: int
    compress_type: int
    flag_bits: int
    external_attr: int

    def is_dir(self) -> bool:
        return self.filename[-1:] == "/"


def read_entries(at: Callable[[int, int], bytes | memoryview], size: int) -> list[Entry] | None:
    """The members of the zip of ``size`` bytes that ``at(offset, length)`` reads, in the
    central directory's order; None for a zip this does not read (zipfile reads it, or
    says what is wrong with it)."""
    if size < _END.size:
        return None
    end = bytes(at(size - _END.size, _END.size))
    signature, disk, directory_disk, here, total, directory_size, directory_offset, comment = (
        _END.unpack(end)
    )
    if signature != _END_SIGNATURE or comment or disk or directory_disk or here != total:
        return None  # a comment (the record is elsewhere), several disks, not a zip
    if _ZIP64_SHORT in (here, total) or _ZIP64_LONG in (directory_size, directory_offset):
        return None
    if size - _END.size >= _LOCATOR_SIZE:
        before = bytes(at(size - _END.size - _LOCATOR_SIZE, 4))
        if before == _LOCATOR_SIGNATURE:
            return None  # ZIP64
    # zipfile moves every offset by what precedes the directory beyond its stated offset
    # (a zip appended to another file): none for a wheel.
    if directory_offset + directory_size != size - _END.size:
        return None
    directory = bytes(at(directory_offset, directory_size))
    if len(directory) != directory_size:
        return None
    return _parse(directory, total)


def _parse(directory: bytes, total: int) -> list[Entry] | None:
    entries: list[Entry] = []
    append = entries.append
    unpack = _ENTRY.unpack_from
    fixed = _ENTRY.size
    make = tuple.__new__  # what Entry(...) calls, without its Python-level __new__
    position = 0
    end = len(directory)
    try:
        while position < end:
            (
                signature,
                _made_by,
                _system,
                version,
                _reserved,
                flags,
                method,
                _time,
                _date,
                _crc,
                compressed,
                uncompressed,
                name_length,
                extra_length,
                comment_length,
                disk,
                _internal,
                external,
                offset,
            ) = unpack(directory, position)
            if signature != _ENTRY_SIGNATURE or version > _MAX_EXTRACT_VERSION or disk:
                return None
            if compressed == _ZIP64_LONG or uncompressed == _ZIP64_LONG or offset == _ZIP64_LONG:
                return None  # in a ZIP64 extra field
            start = position + fixed
            name_end = start + name_length
            position = name_end + extra_length + comment_length
            name = directory[start:name_end].decode("utf-8" if flags & _FLAG_UTF8 else "cp437")
            # zipfile cuts a name at a NUL and, on Windows, turns backslashes into slashes.
            if "\x00" in name or "\\" in name:
                return None
            if extra_length and not _plain_extra(directory, name_end, extra_length):
                return None
            append(
                make(Entry, (name, name, offset, compressed, uncompressed, method, flags, external))
            )
    except (struct.error, UnicodeDecodeError):  # cut short, or a name zipfile cannot read
        return None
    if position != end or len(entries) != total:
        return None
    return entries


def _plain_extra(directory: bytes, start: int, length: int) -> bool:
    """Whether an entry's extra field is well framed and holds no ZIP64 values (zipfile
    reads the sizes and offset from those)."""
    position, end = start, start + length
    while position < end:
        if end - position < _EXTRA_HEADER.size:
            return False
        kind, size = _EXTRA_HEADER.unpack_from(directory, position)
        if kind == _ZIP64_EXTRA:
            return False
        position += _EXTRA_HEADER.size + size
    return position == end
