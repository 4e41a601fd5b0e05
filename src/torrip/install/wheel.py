"""Install one verified wheel with ``installer``, recording every path it creates.

``installer`` does the unpacking, script generation and RECORD; torrip adds a
destination that journals what it writes (so a failed transaction can delete
it), moves aside a file that is in the way instead of failing (as pip
overwrites, but undoably), and checks each written file against the hash the
wheel's RECORD promised. Bytecode is compiled afterwards by the target
interpreter, since ``installer`` would compile for the interpreter running torrip.

Usage::

    journal = WriteJournal(displace=stash.put)
    installed = install_wheel(verified, scheme, interpreter=env.python,
                              script_kind="posix", journal=journal, requested=True)
    compile_bytecode(env.python, [installed], journal)
"""

from __future__ import annotations

import base64
import contextlib
import csv
import hashlib
import io
import json
import os
import posixpath
import subprocess
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import installer
from installer.destinations import SchemeDictionaryDestination
from installer.records import Hash, RecordEntry
from installer.sources import WheelFile
from installer.utils import Scheme, copyfileobj_with_hashing, make_file_executable

from torrip.errors import InstallError, UnsafeWheelError
from torrip.install.safety import ExpectedFile, VerifiedWheel
from torrip.install.uninstall import bytecode_files, bytecode_pattern

if TYPE_CHECKING:
    from installer.scripts import LauncherKind

__all__ = [
    "InstalledWheel",
    "TransactionCancelled",
    "WriteJournal",
    "compile_bytecode",
    "install_wheel",
    "launcher_kind",
]

INSTALLER_NAME = "torrip"
_COMPILE_TIMEOUT_SECONDS = 600.0
# Below this many files per process, starting another interpreter costs more than it saves.
_FILES_PER_COMPILER = 100

# Runs in the target interpreter (3.8+): compile NUL-separated paths from stdin, print the
# bytecode files written. Files that do not compile (Python 2 templates...) are skipped, as pip.
_COMPILE_SCRIPT = r"""
import compileall, importlib.util, os, sys
levels = [int(level) for level in sys.argv[1:]]
written = []
for raw in sys.stdin.buffer.read().split(b"\0"):
    if not raw:
        continue
    path = os.fsdecode(raw)
    for level in levels:
        if compileall.compile_file(path, force=True, quiet=2, optimize=level):
            written.append(importlib.util.cache_from_source(path, optimization=level or ""))
sys.stdout.buffer.write(b"\0".join(os.fsencode(path) for path in written))
"""


class TransactionCancelled(Exception):
    """Another wheel of the transaction failed; this one stops writing."""


class WriteJournal:
    """What a transaction created, shared by the destinations of all its wheels (thread-safe).

    ``displace(path)`` moves a pre-existing file out of the way (into the stash)
    so that installing over it can be undone. Paths are absolute ``str``: this runs
    once per file written (tens of thousands per install), where pathlib costs.
    """

    def __init__(self, displace: Callable[[Path], None]) -> None:
        self._displace = displace
        self._lock = threading.Lock()
        self.created_files: list[str] = []
        self.created_dirs: list[str] = []
        self._created: set[str] = set()
        # Directory -> the names in it before this transaction, plus the directories it made
        # there (files it wrote are in _created): one listdir per directory instead of a
        # stat (and a listdir of __pycache__) per file.
        self._names: dict[str, set[str]] = {}
        self.cancelled = threading.Event()

    def claim(self, target: str) -> None:
        """Make ``target`` writable: parents exist, nothing is in the way, and it is journaled."""
        if self.cancelled.is_set():
            raise TransactionCancelled
        directory, name = os.path.split(target)
        with self._lock:
            names = self._names_in(directory)
            if target in self._created:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(target)  # written earlier in this transaction: last wins
            else:
                if name in names:
                    if os.path.isdir(target) and not os.path.islink(target):
                        raise InstallError(f"cannot install {target}: a directory is in the way")
                    self._displace(Path(target))
                # Bytecode of what was there (or orphaned) goes too: undo() deletes any it finds.
                if name.endswith(".py"):
                    for compiled in self._bytecode_of(directory, names, name[:-3]):
                        self._displace(Path(compiled))
            self._created.add(target)
            self.created_files.append(target)

    def _names_in(self, directory: str) -> set[str]:
        """The names in ``directory`` but the files written since; creates it if missing."""
        names = self._names.get(directory)
        if names is None:
            if os.path.isdir(directory):
                names = set(os.listdir(directory))
            else:
                if os.path.lexists(directory):
                    raise InstallError(
                        f"cannot create the directory {directory}: a file is in the way"
                    )
                parent, name = os.path.split(directory)
                self._names_in(parent).add(name)  # creates the parents first
                os.mkdir(directory)
                self.created_dirs.append(directory)
                names = set()
            self._names[directory] = names
        return names

    def _bytecode_of(self, directory: str, names: set[str], stem: str) -> list[str]:
        """Bytecode of ``directory/stem.py`` that was there: as ``bytecode_files``, cached."""
        found = []
        legacy = os.path.join(directory, f"{stem}.pyc")
        if f"{stem}.pyc" in names and os.path.isfile(legacy):
            found.append(legacy)
        if "__pycache__" in names:
            cache = os.path.join(directory, "__pycache__")
            cached = self._names.get(cache)
            if cached is None:
                cached = set(os.listdir(cache)) if os.path.isdir(cache) else set()
                self._names[cache] = cached
            pattern = bytecode_pattern(stem)
            found.extend(os.path.join(cache, n) for n in sorted(cached) if pattern.match(n))
        return found

    def note_created_dir(self, directory: str) -> None:
        with self._lock:
            self.created_dirs.append(directory)

    def undo(self) -> list[str]:
        """Delete what the transaction created; returns what could not be deleted."""
        problems = []
        with self._lock:
            for path in reversed(self.created_files):
                for doomed in [Path(path), *bytecode_files(Path(path))]:
                    try:
                        doomed.unlink(missing_ok=True)
                    except OSError as error:
                        problems.append(f"{doomed}: {error.strerror or error}")
            for directory in sorted(set(self.created_dirs), key=lambda p: -p.count(os.sep)):
                try:
                    _remove_tree(Path(directory))
                except OSError as error:
                    problems.append(f"{directory}: {error.strerror or error}")
            self.created_files.clear()
            self.created_dirs.clear()
            self._created.clear()
            self._names.clear()
        return problems


def _remove_tree(directory: Path) -> None:
    if directory.is_symlink() or not directory.exists():
        return
    for child in directory.iterdir():
        if child.is_dir() and not child.is_symlink():
            _remove_tree(child)
        else:
            child.unlink()
    directory.rmdir()


class _JournalingDestination(SchemeDictionaryDestination):
    """installer's destination, with every write claimed in the journal and checked."""

    def __init__(
        self,
        scheme_dict: dict[str, str],
        interpreter: str,
        script_kind: LauncherKind,
        journal: WriteJournal,
        verified: VerifiedWheel,
        metadata: Mapping[str, bytes],
    ) -> None:
        # No bytecode here: installer would compile for torrip's interpreter, not the target's.
        super().__init__(
            scheme_dict=scheme_dict,
            interpreter=interpreter,
            script_kind=script_kind,
            bytecode_optimization_levels=(),
        )
        self.journal = journal
        self.verified = verified
        self.metadata = metadata
        self.roots = {key: os.path.abspath(value) for key, value in scheme_dict.items()}
        """Scheme -> its directory, as ``safety`` joined the destinations to it."""
        self.written: list[tuple[Scheme, str]] = []

    def write_file(
        self, scheme: Scheme, path: str | os.PathLike[str], stream: BinaryIO, is_executable: bool
    ) -> RecordEntry:
        """A file from the archive, compared with RECORD as it is written.

        This is the only place its hash is checked (``safety`` checks names and sizes only):
        on a mismatch the file is already written and journaled, so the rollback removes it.
        """
        path = os.fspath(path)
        expected = self.verified.expected.get((scheme, path))
        if expected is None:
            raise self._changed(path, "is not in the wheel that was checked")
        algorithm, _, value = expected.digest.partition("=")
        value = value.rstrip("=")
        if scheme != "scripts" and algorithm == "sha256":
            # write_to_fs hashes what it writes with sha256: compare afterwards, for free.
            entry = self.write_to_fs(scheme, path, stream, is_executable)
            if entry.hash_ is None or (entry.hash_.value, entry.size) != (value, expected.size):
                raise self._mismatch(expected, algorithm)
            return entry
        # Scripts get their shebang rewritten while written; other hashes are rare: in memory.
        data = stream.read()
        actual = base64.urlsafe_b64encode(hashlib.new(algorithm, data).digest()).rstrip(b"=")
        if (actual.decode("ascii"), len(data)) != (value, expected.size):
            raise self._mismatch(expected, algorithm)
        return super().write_file(scheme, path, io.BytesIO(data), is_executable)

    def write_to_fs(
        self, scheme: Scheme, path: str, stream: BinaryIO, is_executable: bool
    ) -> RecordEntry:
        """Write ``stream`` to ``path`` in ``scheme``: installer's, with str paths and the journal.

        Replaces installer's own (pathlib, a containment check and two stats per file): the
        target must be one ``safety`` listed, and the journal has moved anything in its way.
        """
        target = os.path.join(self.roots[scheme], path)
        if target not in self.verified.destinations:
            raise self._changed(path, "was not in the wheel that was checked")
        self.journal.claim(target)
        self.written.append((scheme, target))
        with open(target, "wb") as file:
            digest, size = copyfileobj_with_hashing(stream, file, self.hash_algorithm)
        if is_executable:
            make_file_executable(Path(target))
        return RecordEntry(path, Hash(self.hash_algorithm, digest), size)

    def finalize_installation(
        self,
        scheme: Scheme,
        record_file_path: str,
        records: Iterable[tuple[Scheme, RecordEntry]],
    ) -> None:
        """Write torrip's own .dist-info files (INSTALLER...), then RECORD listing them too.

        Written here rather than as installer's ``additional_metadata``, which goes through
        ``write_file`` and would be taken for (unchecked) files of the wheel.
        """
        dist_info = posixpath.dirname(record_file_path)
        ours = {posixpath.join(dist_info, name): data for name, data in self.metadata.items()}
        entries = [(s, entry) for s, entry in records if entry.path not in ours]
        for path, data in ours.items():
            entries.append((scheme, self.write_to_fs(scheme, path, io.BytesIO(data), False)))
        super().finalize_installation(scheme, record_file_path, entries)

    def _mismatch(self, expected: ExpectedFile, algorithm: str) -> UnsafeWheelError:
        return UnsafeWheelError(
            self.verified.path, expected.member, f"{algorithm} does not match RECORD"
        )

    def _changed(self, path: str, how: str) -> InstallError:
        return InstallError(
            f"{self.verified.path.name} changed after it was checked: {path} {how}",
            wheel=self.verified.path,
            hint="The environment was restored. Something rewrote the file during the "
            "install; download it again.",
        )


@dataclass(frozen=True)
class InstalledWheel:
    """A wheel that ``install_wheel`` wrote."""

    verified: VerifiedWheel
    root: Path
    """The scheme directory holding the .dist-info (RECORD paths are relative to it)."""
    dist_info: Path
    files: tuple[tuple[str, str], ...]
    """(scheme, absolute path) of every file written."""


def launcher_kind(markers: Mapping[str, str]) -> LauncherKind:
    """installer's script launcher kind for the target (not for the interpreter running torrip)."""
    if markers.get("os_name") != "nt":
        return "posix"
    machine = markers.get("platform_machine", "").lower()
    if machine in ("arm64", "aarch64"):
        return "win-arm64"
    if machine.startswith("arm"):
        return "win-arm"
    return "win-amd64" if machine in ("amd64", "x86_64") else "win-ia32"


def install_wheel(
    verified: VerifiedWheel,
    scheme: Mapping[str, Path],
    *,
    interpreter: Path,
    script_kind: LauncherKind,
    journal: WriteJournal,
    requested: bool,
    direct_url: Mapping[str, Any] | None = None,
) -> InstalledWheel:
    """Install ``verified`` into ``scheme``; scripts' shebangs name ``interpreter``.

    Writes INSTALLER (``torrip``), REQUESTED when ``requested``, and direct_url.json
    when ``direct_url`` is given. Every path written is claimed in ``journal`` first.
    """
    metadata = {"INSTALLER": f"{INSTALLER_NAME}\n".encode()}
    if requested:
        metadata["REQUESTED"] = b""
    if direct_url is not None:
        metadata["direct_url.json"] = json.dumps(dict(direct_url), sort_keys=True).encode()
    destination = _JournalingDestination(
        scheme_dict={key: os.fspath(value) for key, value in scheme.items()},
        interpreter=os.fspath(interpreter),
        script_kind=script_kind,
        journal=journal,
        verified=verified,
        metadata=metadata,
    )
    with WheelFile.open(verified.path) as source:
        installer.install(source, destination, additional_metadata={})
    root = Path(os.path.abspath(scheme[verified.root_scheme]))
    return InstalledWheel(
        verified=verified,
        root=root,
        dist_info=root / verified.dist_info,
        files=tuple(destination.written),
    )


def compile_bytecode(
    python: Path,
    wheels: Sequence[InstalledWheel],
    journal: WriteJournal,
    levels: Sequence[int] = (0,),
    *,
    workers: int = 1,
) -> None:
    """Compile the wheels' purelib/platlib .py files with the target ``python``; add to RECORD.

    ``workers`` target processes share the files (compiling is CPU-bound, one core each).
    """
    sources: dict[str, InstalledWheel] = {}
    for wheel in wheels:
        for scheme, path in wheel.files:
            if scheme in ("purelib", "platlib") and path.endswith(".py"):
                sources[path] = wheel
    if not sources:
        return
    for cache in {os.path.join(os.path.dirname(path), "__pycache__") for path in sources}:
        if not os.path.exists(cache):
            journal.note_created_dir(cache)
    paths = list(sources)
    count = max(1, min(workers, len(paths) // _FILES_PER_COMPILER))
    chunks = [paths[index::count] for index in range(count)]
    with ThreadPoolExecutor(max_workers=count) as pool:
        outputs = list(pool.map(lambda chunk: _compile(python, chunk, levels), chunks))
    compiled: dict[Path, list[Path]] = {}
    for output in outputs:
        for raw in output.split(b"\0"):
            if raw:
                pyc = Path(os.fsdecode(raw))
                source = os.fspath(_source_of(pyc))
                if source in sources:
                    compiled.setdefault(sources[source].dist_info, []).append(pyc)
    for wheel in wheels:
        _append_to_record(wheel, compiled.get(wheel.dist_info, []))


def _compile(python: Path, paths: Sequence[str], levels: Sequence[int]) -> bytes:
    """Run the target interpreter over ``paths``; the bytecode files it wrote, NUL-separated."""
    try:
        completed = subprocess.run(
            [os.fspath(python), "-I", "-c", _COMPILE_SCRIPT, *map(str, levels)],
            input=b"\0".join(os.fsencode(path) for path in paths),
            capture_output=True,
            timeout=_COMPILE_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise InstallError(f"cannot byte-compile with {python}: {error}") from None
    if completed.returncode != 0:
        detail = completed.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        raise InstallError(
            f"byte-compiling with {python} failed (exit code {completed.returncode})"
            + "".join(f"\n    {line}" for line in detail)
        )
    return completed.stdout


def _source_of(pyc: Path) -> Path:
    """``pkg/__pycache__/mod.cpython-38.opt-1.pyc`` -> ``pkg/mod.py``."""
    parts = pyc.name.removesuffix(".pyc").split(".")
    if len(parts) > 2 and parts[-1].startswith("opt-"):
        parts.pop()
    return pyc.parent.parent / (".".join(parts[:-1]) + ".py")


def _append_to_record(wheel: InstalledWheel, files: Sequence[Path]) -> None:
    """List bytecode in RECORD, as pip does, so any tool's uninstall removes it."""
    if not files:
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for path in sorted(files):
        data = path.read_bytes()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
        relative = os.path.relpath(path, wheel.root)
        writer.writerow([relative, f"sha256={digest.decode('ascii')}", len(data)])
    with (wheel.dist_info / "RECORD").open("a", encoding="utf-8", newline="") as record:
        record.write(buffer.getvalue())
