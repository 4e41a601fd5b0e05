"""The cache folder as a whole: its areas, what each holds, and emptying it.

Areas under ``Settings.cache_dir``:

- ``dists-v1``: verified distribution files (``torrip.cache.DistributionCache``),
  with partial downloads kept for resume;
- ``unpacked-v1``: wheels unpacked once, linked into environments by installs
  (``torrip.cache.UnpackedCache``);
- ``metadata-v1``: core metadata files (PEP 658) by the sha256 of their wheel;
- ``http-v1``: index pages, with their validators (``torrip.index.httpcache``);
- ``interpreters-v1``: what target interpreters said of themselves
  (``torrip.interpreters``);
- ``lockfiles-v1``: lockfiles' TOML, parsed, by the sha256 of their bytes
  (``torrip.lockfile.parsed``);
- ``resolutions-v1``: resolutions, reused while the pages they read are unchanged
  (``torrip.resolver.memo``).

Usage::

    usage = measure_cache(settings.cache_dir)
    usage.areas[0].files, usage.areas[0].size      # dists-v1: 12 files, 3456789 bytes
    cleaned = clean_cache(settings.cache_dir)
    cleaned.bytes_freed
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from torrip.cache import DistributionCache, UnpackedCache
from torrip.errors import CacheError

__all__ = ["AREAS", "AreaUsage", "CacheUsage", "CleanResult", "clean_cache", "measure_cache"]

AREAS: tuple[tuple[str, str], ...] = (
    ("dists-v1", "Distribution files"),
    ("unpacked-v1", "Unpacked wheels"),
    ("metadata-v1", "Package metadata"),
    ("http-v1", "Index pages"),
    ("interpreters-v1", "Interpreters"),
    ("lockfiles-v1", "Lockfiles read"),
    ("resolutions-v1", "Resolutions"),
)
"""(folder, what it holds), in the order ``torrip cache info`` lists them."""

_BOOKKEEPING_DIRS = frozenset({"locks"})
# Areas without downloads or unpacking in progress: every file goes.
_PLAIN_AREAS = ("metadata-v1", "http-v1", "interpreters-v1", "lockfiles-v1", "resolutions-v1")


@dataclass(frozen=True)
class AreaUsage:
    name: str
    label: str
    path: Path
    files: int
    """Files holding data: not lock files, not hidden bookkeeping such as ``.entry.json``."""
    size: int
    """Bytes on disk of those files; hard links to one content are counted once."""


@dataclass(frozen=True)
class CacheUsage:
    root: Path
    areas: tuple[AreaUsage, ...]

    @property
    def files(self) -> int:
        return sum(area.files for area in self.areas)

    @property
    def size(self) -> int:
        return sum(area.size for area in self.areas)


@dataclass(frozen=True)
class CleanResult:
    before: CacheUsage
    after: CacheUsage
    """What stayed: partial downloads another process is writing."""

    @property
    def files_removed(self) -> int:
        return self.before.files - self.after.files

    @property
    def bytes_freed(self) -> int:
        return self.before.size - self.after.size


def measure_cache(root: Path) -> CacheUsage:
    """How many files and bytes each area of the cache at ``root`` holds."""
    root = Path(root)
    return CacheUsage(
        root,
        tuple(AreaUsage(name, label, root / name, *_usage(root / name)) for name, label in AREAS),
    )


def clean_cache(root: Path) -> CleanResult:
    """Empty every area; downloads in progress in another process are left alone.

    Raises CacheError when a file cannot be removed (a read-only shared cache).
    """
    root = Path(root)
    before = measure_cache(root)
    DistributionCache(root).clean()
    UnpackedCache(root).clean()  # environments that link its files keep their links
    for name in _PLAIN_AREAS:
        _remove_files(root / name)
    return CleanResult(before, measure_cache(root))


def _usage(area: Path) -> tuple[int, int]:
    files = size = 0
    seen: set[tuple[int, int]] = set()
    for directory, dirs, names in os.walk(area):
        if Path(directory) == area:
            dirs[:] = [d for d in dirs if d not in _BOOKKEEPING_DIRS]
        for name in names:
            if name.startswith("."):
                continue
            try:
                info = os.lstat(os.path.join(directory, name))
            except OSError:
                continue  # removed meanwhile
            if not stat.S_ISREG(info.st_mode):
                continue
            files += 1
            if (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                size += info.st_size
    return files, size


def _remove_files(area: Path) -> None:
    """Remove every file under ``area``, then the folders left empty (``area`` stays)."""
    for directory, _dirs, names in os.walk(area, topdown=False):
        for name in names:
            path = os.path.join(directory, name)
            try:
                os.unlink(path)
            except FileNotFoundError:
                continue
            except OSError as error:
                raise CacheError(path, error.strerror or str(error)) from None
        if Path(directory) != area:
            with contextlib.suppress(OSError):
                os.rmdir(directory)
