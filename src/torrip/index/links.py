"""Links: one file offered by an index, immutable, with everything known about it."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import NamedTuple
from urllib.parse import urldefrag

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

__all__ = ["Link", "TorrentRef", "parse_upload_time"]


# Memoized module functions, not cached_property: in Python 3.11 cached_property takes
# a lock that the resolver's prefetch threads contend for.
@functools.lru_cache(maxsize=65536)
def _parse_filename(filename: str) -> tuple[NormalizedName, Version, frozenset[Tag]] | None:
    try:
        if filename.endswith(".whl"):
            name, version, _build, tags = parse_wheel_filename(filename)
            return name, version, tags
        name, version = parse_sdist_filename(filename)
        return name, version, frozenset()
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None


def parse_upload_time(text: str | None) -> datetime | None:
    """A PEP 700 upload time (ISO 8601, "Z" for UTC) as written; None if absent or unreadable."""
    if not text:
        return None
    try:  # fromisoformat reads "Z" only from Python 3.11 on
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


@functools.lru_cache(maxsize=4096)
def _parse_requires_python(text: str) -> SpecifierSet | None:
    try:
        return SpecifierSet(text)
    except InvalidSpecifier:
        return None  # pip ignores an invalid requires-python too


_NO_HASHES: Mapping[str, str] = MappingProxyType({})


class TorrentRef(NamedTuple):
    """Where a file's torrent is announced by the index (the private ``_torrent`` key)."""

    btih: str | None = None
    btmh: str | None = None
    sha256: str | None = None  # of the .torrent file itself
    url: str | None = None  # defaults to <file url>.torrent

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in self._asdict().items() if v is not None}


class Link(NamedTuple):
    """A distribution file on an index page (PEP 503/691) or in a --find-links folder."""

    filename: str
    url: str
    # algorithm -> hex digest as the index gave it (trusted root); compared lowercased.
    hashes: Mapping[str, str] = _NO_HASHES
    requires_python: str | None = None
    yanked: str | None = None  # None: not yanked; "" yanked without a reason
    # None: no metadata file; {}: metadata file without hashes; else its hashes.
    metadata_hashes: Mapping[str, str] | None = None
    size: int | None = None
    upload_time: str | None = None
    index_url: str | None = None  # the index page this came from, for lockfiles and reports
    torrent: TorrentRef | None = None

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")

    @property
    def parsed(self) -> tuple[NormalizedName, Version, frozenset[Tag]] | None:
        """(name, version, tags) parsed from the filename; None if it is not a distribution."""
        return _parse_filename(self.filename)

    @property
    def requires_python_specifier(self) -> SpecifierSet | None:
        return _parse_requires_python(self.requires_python) if self.requires_python else None

    @property
    def metadata_url(self) -> str:
        return urldefrag(self.url).url + ".metadata"

    @property
    def torrent_url(self) -> str:
        if self.torrent and self.torrent.url:
            return self.torrent.url
        return urldefrag(self.url).url + ".torrent"

    @property
    def sha256(self) -> str | None:
        digest = self.hashes.get("sha256")
        return digest.lower() if digest else None
