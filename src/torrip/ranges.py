"""HTTP byte ranges (RFC 9110, section 14): one range per request, as installers ask. The
index server and the client's file: transport (httptransport.LocalFiles) answer them.

parse_range("bytes=100-", 1000)   # ByteRange(start=100, end=999)
parse_range("bytes=-10", 1000)    # ByteRange(start=990, end=999)
parse_range("bytes=2000-", 1000)  # UNSATISFIABLE
parse_range("bytes=0-1,5-9", 1000)  # None: several ranges, answer with the whole file
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["UNSATISFIABLE", "ByteRange", "parse_range"]


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


class _Unsatisfiable:
    def __repr__(self) -> str:
        return "UNSATISFIABLE"


UNSATISFIABLE: Final = _Unsatisfiable()


def parse_range(header: str, size: int) -> ByteRange | _Unsatisfiable | None:
    """The one range a Range header asks for; None to ignore it (malformed, several ranges)."""
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    first, last = first.strip(), last.strip()
    if not (first.isdigit() or first == "") or not (last.isdigit() or last == ""):
        return None
    if first == "":
        if last == "":
            return None
        suffix = int(last)
        if suffix == 0 or size == 0:
            return UNSATISFIABLE
        return ByteRange(max(size - suffix, 0), size - 1)
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        return UNSATISFIABLE
    return ByteRange(start, min(int(last), size - 1) if last else size - 1)
