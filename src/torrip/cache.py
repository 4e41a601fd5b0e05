"""The distribution cache: verified files, content-addressed by sha256, shared by processes.

    cache = DistributionCache(settings.cache_dir)
    path = cache.get(sha256, "demo-1.0-py3-none-any.whl")    # None on a miss
    with cache.lock(sha256):                                   # one downloader per file
        partial = cache.partial_path(sha256)                   # resumable download target
        ...                                                    # download, then verify
        path = cache.add_file(partial, sha256, "demo-1.0-py3-none-any.whl")

Layout under ``root`` (``Settings.cache_dir``)::

    dists-v1/
      ab/abcdef…(sha256)/           one folder per content
        .entry.json                 {"sha256": …, "size": N}; its mtime is the last use
        demo-1.0-py3-none-any.whl   the original bytes under the original file name
        .torrent                    its torrent (recipe 1), when one is known: what the
                                    agent seeds; checked against the file before it was kept
      tmp/<sha256>.part             downloads in progress, kept for resume
      tmp/<sha256>.part.resume      the resume validator (see torrip.transport.http)
      locks/<sha256>.lock           flock(2) files: one downloader per file across processes

The file keeps the name the index gave it, because a torrent names its file: a
seeder points libtorrent at the folder. The same bytes under a second name become
a hard link in the same folder. Only verified bytes enter: ``add_file`` is called
after the sha256 (and size) were checked, fsyncs, and publishes with link(2), so a
reader sees no file or the whole file. When two processes race, the first file
stays. ``get`` re-checks the size against ``.entry.json`` instead of rehashing.

Next to it, the unpacked wheels (``UnpackedCache``; filled by ``torrip.install.unpacked``)::

    unpacked-v1/
      ab/abcdef…(sha256 of the wheel)/
        .manifest.json              what the checks found: name, version, .dist-info, and
                                    per file its sha256, size and mtime (see install.unpacked)
        tree/…                      every file of the wheel at its archive path, each one
                                    compared with the wheel's RECORD while it was written
      tmp/<sha256>-<random>/        unpacking in progress, same layout; renamed into place
      locks/<sha256>.lock           flock(2) files: one unpacker per wheel across processes

An install hard-links the files of ``tree/`` into the environment (or copies them, see the
``link-mode`` setting), so they are shared with every environment that has them: torrip
never writes to them again (nor chmods them). They are not fsynced: lost after a crash,
they are unpacked again from the wheel. An entry is published whole with rename(2); when two
processes race, the first stays and the other's copy is deleted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from torrip.errors import CacheError
from torrip.fsutil import atomic_write, flock_is_held

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no cross-process lock, still correct
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "CacheEntry",
    "CacheInfo",
    "DistributionCache",
    "UnpackedCache",
    "UnpackedInfo",
    "sha256_of",
]

_LAYOUT = "dists-v1"
_UNPACKED_LAYOUT = "unpacked-v1"
_ENTRY = ".entry.json"
_TORRENT = ".torrent"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1024 * 1024


class CacheEntry(NamedTuple):
    """One cached file. ``atime`` is when it was last added or used (seconds since the epoch)."""

    sha256: str
    filename: str
    size: int
    path: Path
    atime: float


class CacheInfo(NamedTuple):
    root: Path
    files: int  # distinct contents
    names: int  # file names (a content may have several)
    size: int  # bytes of distinct contents
    partial_size: int  # bytes of downloads in progress or interrupted


def _check_sha256(sha256: str) -> str:
    if not _SHA256.fullmatch(sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return sha256


def _check_filename(filename: str) -> str:
    # The name comes from an index page: it must stay a plain name inside the entry folder.
    if (
        not filename
        or filename.startswith(".")
        or "/" in filename
        or "\\" in filename
        or "\x00" in filename
    ):
        raise CacheError(filename, "refusing to cache a file under an unsafe name")
    return filename


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform or filesystem can
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def sha256_of(path: Path) -> str:
    """The sha256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


class DistributionCache:
    """Verified distribution files under ``root / "dists-v1"``; see the module docstring."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.store = self.root / _LAYOUT

    # -- paths ------------------------------------------------------------------------

    def entry_dir(self, sha256: str) -> Path:
        sha256 = _check_sha256(sha256)
        return self.store / sha256[:2] / sha256

    def temp_dir(self) -> Path:
        """Where downloads in progress live: on the store's filesystem, so publishing is a link."""
        return self._mkdir(self.store / "tmp")

    def partial_path(self, sha256: str) -> Path:
        """Where the resumable partial download of ``sha256`` lives (hold ``lock`` to write it)."""
        return self.temp_dir() / f"{_check_sha256(sha256)}.part"

    @contextlib.contextmanager
    def lock(self, sha256: str) -> Iterator[None]:
        """Exclusive, across threads and processes, for downloading ``sha256``.

        A second downloader waits here, then finds the file with ``get``.
        """
        path = self._mkdir(self.store / "locks") / f"{_check_sha256(sha256)}.lock"
        with _exclusive(path):
            yield

    # -- reading ----------------------------------------------------------------------

    def get(self, sha256: str, filename: str, *, size: int | None = None) -> Path | None:
        """The cached file with this content under this name, or None.

        Checks the size against the entry's record (no rehash); a ``size`` the caller knows
        (from the index or a lock) is checked instead when the file has it, which spares
        reading the record: the bytes were verified on the way in and are never written
        again. If the content is cached under another name only, that file is linked under
        this name too.
        """
        folder = self.entry_dir(sha256)
        _check_filename(filename)
        path = folder / filename
        if size is None or not _has_size(path, size):
            size = self._recorded_size(folder)
            if size is None:
                return None
            if not _has_size(path, size):
                other = next(
                    (p for p in self._names(folder) if p.name != filename and _has_size(p, size)),
                    None,
                )
                if other is None:
                    return None
                try:
                    os.link(other, path)
                except FileExistsError:
                    if not _has_size(path, size):
                        return None
                except OSError:
                    return None
        with contextlib.suppress(OSError):  # a read-only shared cache is still usable
            os.utime(folder / _ENTRY)
        return path

    def entries(self) -> Iterator[CacheEntry]:
        """Every cached file name, one entry per (content, name)."""
        for folder in self._entry_dirs():
            size = self._recorded_size(folder)
            if size is None:
                continue
            try:
                used = (folder / _ENTRY).stat().st_mtime
            except OSError:
                continue
            for path in self._names(folder):
                if _has_size(path, size):
                    yield CacheEntry(folder.name, path.name, size, path, used)

    def info(self) -> CacheInfo:
        contents: set[str] = set()
        names = size = 0
        for entry in self.entries():
            names += 1
            if entry.sha256 not in contents:
                contents.add(entry.sha256)
                size += entry.size
        partial = sum(_size(p) for p in _listdir(self.store / "tmp"))
        return CacheInfo(self.root, len(contents), names, size, partial)

    # -- writing ----------------------------------------------------------------------

    def add_file(self, temp_path: Path, sha256: str, filename: str) -> Path:
        """Move a verified file (in ``temp_dir``) into the store; returns its cached path.

        The caller has checked that ``temp_path`` has this sha256. The bytes are
        fsynced before they are published; if another process published the same
        content first, its file stays and ``temp_path`` is removed.
        """
        folder = self.entry_dir(sha256)
        _check_filename(filename)
        path = folder / filename
        try:
            with temp_path.open("rb") as handle:
                os.fsync(handle.fileno())
                size = os.fstat(handle.fileno()).st_size
            # Cached files are never written again; seeders rely on that.
            temp_path.chmod(0o444)
            folder.mkdir(parents=True, exist_ok=True)
            if self._recorded_size(folder) != size:
                record = json.dumps({"sha256": sha256, "size": size}).encode()
                atomic_write(folder / _ENTRY, record, durable=True)
            try:
                os.link(temp_path, path)
            except FileExistsError:
                if not _has_size(path, size):
                    temp_path.replace(path)  # a damaged file: ours replaces it
            except OSError:
                temp_path.replace(path)  # no hard links here: same bytes, atomic anyway
            temp_path.unlink(missing_ok=True)
            _fsync_dir(folder)
        except OSError as exc:
            raise CacheError(exc.filename or folder, exc.strerror or str(exc)) from None
        return path

    def add_torrent(self, sha256: str, data: bytes) -> None:
        """Keep the torrent of a cached file; the caller has checked it describes the file."""
        folder = self.entry_dir(sha256)
        try:
            atomic_write(folder / _TORRENT, data, durable=False)
        except OSError as exc:
            raise CacheError(exc.filename or folder, exc.strerror or str(exc)) from None

    def torrent(self, sha256: str) -> bytes | None:
        """The kept torrent of ``sha256``, or None."""
        try:
            return (self.entry_dir(sha256) / _TORRENT).read_bytes()
        except OSError:
            return None

    def remove(self, sha256: str) -> int:
        """Remove one content (every name, its torrent, its record); returns the bytes freed.

        Used by the seeding agent for its disk quota and for a file found corrupt on disk.
        Holds the content's lock, so a download of it in another process is not cut short.
        """
        folder = self.entry_dir(sha256)
        with self.lock(sha256):
            freed = sum(_size(p) for p in self._names(folder) if _is_first_link(p))
            shutil.rmtree(folder, ignore_errors=True)
            with contextlib.suppress(OSError):
                folder.parent.rmdir()
        return freed

    def clean(self) -> int:
        """Remove every cached file and idle partial download; returns the bytes freed.

        Partial downloads another process is writing (its lock is held) are kept.
        """
        freed = 0
        for folder in list(self._entry_dirs()):
            freed += sum(_size(p) for p in self._names(folder) if _is_first_link(p))
            shutil.rmtree(folder, ignore_errors=True)
            with contextlib.suppress(OSError):
                folder.parent.rmdir()
        for partial in _listdir(self.store / "tmp"):
            sha256 = partial.name.split(".", 1)[0]
            if _SHA256.fullmatch(sha256) and self._locked(sha256):
                continue
            freed += _size(partial)
            partial.unlink(missing_ok=True)
        return freed

    # -- helpers ----------------------------------------------------------------------

    def _mkdir(self, path: Path) -> Path:
        return _make_dir(path)

    def _entry_dirs(self) -> Iterator[Path]:
        return _content_dirs(self.store)

    @staticmethod
    def _names(folder: Path) -> list[Path]:
        return sorted(p for p in _listdir(folder) if not p.name.startswith("."))

    @staticmethod
    def _recorded_size(folder: Path) -> int | None:
        try:
            size = json.loads((folder / _ENTRY).read_bytes())["size"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return size if isinstance(size, int) else None

    def _locked(self, sha256: str) -> bool:
        return flock_is_held(self.store / "locks" / f"{sha256}.lock")


class UnpackedInfo(NamedTuple):
    root: Path
    wheels: int  # unpacked wheels
    files: int  # files in their trees
    size: int  # bytes of those files (shared with every environment that links them)


class UnpackedCache:
    """Unpacked wheels under ``root / "unpacked-v1"``, by the wheel's sha256 (module docstring).

    This class only owns the folders: where an entry lives, one unpacker per wheel, atomic
    publication, cleaning. What goes inside is ``torrip.install.unpacked``'s business::

        store = UnpackedCache(settings.cache_dir)
        with store.lock(sha256), store.staging(sha256) as staging:
            ...                                  # fill staging/ (tree/, .manifest.json)
            entry = store.publish(staging, sha256)  # the first process to publish wins
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.store = self.root / _UNPACKED_LAYOUT

    def entry_dir(self, sha256: str) -> Path:
        sha256 = _check_sha256(sha256)
        return self.store / sha256[:2] / sha256

    @contextlib.contextmanager
    def lock(self, sha256: str) -> Iterator[None]:
        """Exclusive, across threads and processes, for unpacking ``sha256``."""
        path = self._mkdir(self.store / "locks") / f"{_check_sha256(sha256)}.lock"
        with _exclusive(path):
            yield

    @contextlib.contextmanager
    def staging(self, sha256: str) -> Iterator[Path]:
        """A new empty folder on the store's filesystem, deleted on exit unless published."""
        folder = Path(tempfile.mkdtemp(prefix=f"{_check_sha256(sha256)}-", dir=self._tmp()))
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def publish(self, staging: Path, sha256: str) -> Path:
        """Rename a filled ``staging`` folder into place; returns the entry folder.

        If the entry exists (another process was first), it stays and ``staging`` is deleted.
        """
        entry = self.entry_dir(sha256)
        self._mkdir(entry.parent)
        try:
            staging.rename(entry)
        except OSError as exc:
            if not entry.is_dir():  # not a lost race: a real failure
                raise CacheError(entry, exc.strerror or str(exc)) from None
            shutil.rmtree(staging, ignore_errors=True)
        return entry

    def discard(self, sha256: str) -> None:
        """Remove an entry found damaged: moved aside at once (atomic), then deleted."""
        entry = self.entry_dir(sha256)
        doomed = Path(tempfile.mkdtemp(prefix=f"{sha256}-stale-", dir=self._tmp()))
        with contextlib.suppress(OSError):  # gone already
            entry.rename(doomed / "entry")
        shutil.rmtree(doomed, ignore_errors=True)

    def writable(self) -> bool:
        """Whether wheels can be unpacked here (a shared cache may be read-only)."""
        try:
            self._tmp()
            self._mkdir(self.store / "locks")
        except CacheError:
            return False
        return os.access(self.store, os.W_OK)

    def entry_size(self, sha256: str) -> int:
        """Bytes of the unpacked files of ``sha256`` (0 without an entry), from its manifest:
        no walk over thousands of files when the agent weighs the cache for its quota."""
        try:
            manifest = json.loads((self.entry_dir(sha256) / ".manifest.json").read_bytes())
            return sum(int(row[2]) for row in manifest["files"])
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return 0

    def info(self) -> UnpackedInfo:
        wheels = files = size = 0
        seen: set[tuple[int, int]] = set()
        for entry in self._entry_dirs():
            wheels += 1
            for directory, _dirs, names in os.walk(entry / "tree"):
                for name in names:
                    with contextlib.suppress(OSError):
                        stat = os.lstat(os.path.join(directory, name))
                        files += 1
                        if (stat.st_dev, stat.st_ino) not in seen:
                            seen.add((stat.st_dev, stat.st_ino))
                            size += stat.st_size
        return UnpackedInfo(self.root, wheels, files, size)

    def clean(self) -> int:
        """Remove every unpacked wheel and idle staging folder; returns the bytes freed.

        Bytes of files that environments still link to stay on disk (counted all the same).
        Staging folders of an unpacking in progress (its lock is held) are kept.
        """
        freed = 0
        for folder in list(self._entry_dirs()):
            freed += _tree_size(folder)
            shutil.rmtree(folder, ignore_errors=True)
            with contextlib.suppress(OSError):
                folder.parent.rmdir()
        for staging in _listdir(self.store / "tmp"):
            sha256 = staging.name.split("-", 1)[0]
            if _SHA256.fullmatch(sha256) and flock_is_held(self.store / "locks" / f"{sha256}.lock"):
                continue
            freed += _tree_size(staging)
            shutil.rmtree(staging, ignore_errors=True)
        return freed

    def _entry_dirs(self) -> Iterator[Path]:
        return _content_dirs(self.store)

    def _tmp(self) -> Path:
        return self._mkdir(self.store / "tmp")

    @staticmethod
    def _mkdir(path: Path) -> Path:
        return _make_dir(path)


def _make_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CacheError(path, exc.strerror or str(exc)) from None
    return path


def _content_dirs(store: Path) -> Iterator[Path]:
    """The ``<sha256[:2]>/<sha256>`` folders of a store (not tmp/ or locks/)."""
    for prefix in _listdir(store):
        if len(prefix.name) != 2:
            continue  # tmp/, locks/
        for folder in _listdir(prefix):
            if _SHA256.fullmatch(folder.name) and folder.name[:2] == prefix.name:
                yield folder


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold flock(2) on ``path`` (created if missing) for the block."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise CacheError(path, exc.strerror or str(exc)) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _tree_size(folder: Path) -> int:
    size = 0
    for directory, _dirs, names in os.walk(folder):
        for name in names:
            with contextlib.suppress(OSError):
                size += os.lstat(os.path.join(directory, name)).st_size
    return size


def _listdir(path: Path) -> list[Path]:
    try:
        return list(path.iterdir())
    except OSError:
        return []


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _has_size(path: Path, size: int) -> bool:
    try:
        return path.stat().st_size == size
    except OSError:
        return False


def _is_first_link(path: Path) -> bool:
    """Count hard-linked names of one content once (the last name removed frees the bytes)."""
    try:
        stat = path.stat()
    except OSError:
        return False
    names = [p for p in path.parent.iterdir() if not p.name.startswith(".")]
    same = sorted(p.name for p in names if p.stat().st_ino == stat.st_ino)
    return same[:1] == [path.name]
