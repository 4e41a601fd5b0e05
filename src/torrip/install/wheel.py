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
from installer.records import RecordEntry
from installer.sources import WheelFile
from installer.utils import Scheme

from torrip.errors import InstallError
from torrip.install.safety import VerifiedWheel
from torrip.install.uninstall import bytecode_files

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
    so that installing over it can be undone.
    """

    def __init__(self, displace: Callable[[Path], None]) -> None:
        self._displace = displace
        self._lock = threading.Lock()
        self.created_files: list[Path] = []
        self.created_dirs: list[Path] = []
        self._created: set[Path] = set()
        self.cancelled = threading.Event()

    def claim(self, target: Path) -> None:
        """Make ``target`` writable: parents exist, nothing is in the way, and it is journaled."""
        if self.cancelled.is_set():
            raise TransactionCancelled
        with self._lock:
            self._make_parents(target.parent)
            if target in self._created:
                target.unlink(missing_ok=True)  # written earlier in this transaction: last wins
            else:
                if os.path.lexists(target):
                    if target.is_dir() and not target.is_symlink():
                        raise InstallError(f"cannot install {target}: a directory is in the way")
                    self._displace(target)
                # Bytecode of what was there (or orphaned) goes too: undo() deletes any it finds.
                for compiled in bytecode_files(target):
                    self._displace(compiled)
            self._created.add(target)
            self.created_files.append(target)

    def _make_parents(self, directory: Path) -> None:
        missing = []
        while not directory.is_dir():
            if os.path.lexists(directory):
                raise InstallError(f"cannot create the directory {directory}: a file is in the way")
            missing.append(directory)
            directory = directory.parent
        for parent in reversed(missing):
            parent.mkdir()
            self.created_dirs.append(parent)

    def note_created_dir(self, directory: Path) -> None:
        with self._lock:
            self.created_dirs.append(directory)

    def undo(self) -> list[str]:
        """Delete what the transaction created; returns what could not be deleted."""
        problems = []
        with self._lock:
            for path in reversed(self.created_files):
                for doomed in [path, *bytecode_files(path)]:
                    try:
                        doomed.unlink(missing_ok=True)
                    except OSError as error:
                        problems.append(f"{doomed}: {error.strerror or error}")
            for directory in sorted(set(self.created_dirs), key=lambda p: -len(p.parts)):
                try:
                    _remove_tree(directory)
                except OSError as error:
                    problems.append(f"{directory}: {error.strerror or error}")
            self.created_files.clear()
            self.created_dirs.clear()
            self._created.clear()
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
        self.written: list[tuple[Scheme, Path]] = []

    def write_file(
        self, scheme: Scheme, path: str | os.PathLike[str], stream: BinaryIO, is_executable: bool
    ) -> RecordEntry:
        """A file from the archive: checked again against RECORD, as the wheel may have changed."""
        path = os.fspath(path)
        expected = self.verified.expected.get((scheme, path))
        if expected is None:
            raise self._changed(path, "is not in the wheel that was checked")
        digest, size = expected
        algorithm, _, value = digest.partition("=")
        if scheme != "scripts" and algorithm == "sha256":
            # installer hashes what it writes with sha256: compare afterwards, for free.
            entry = super().write_file(scheme, path, stream, is_executable)
            if entry.hash_ is None or (entry.hash_.value, entry.size) != (value.rstrip("="), size):
                raise self._changed(path, "does not match RECORD any more")
            return entry
        # Scripts get their shebang rewritten while written; other hashes are rare: in memory.
        data = stream.read()
        actual = base64.urlsafe_b64encode(hashlib.new(algorithm, data).digest()).rstrip(b"=")
        if (actual.decode("ascii"), len(data)) != (value.rstrip("="), size):
            raise self._changed(path, "does not match RECORD any more")
        return super().write_file(scheme, path, io.BytesIO(data), is_executable)

    def write_to_fs(
        self, scheme: Scheme, path: str, stream: BinaryIO, is_executable: bool
    ) -> RecordEntry:
        target = Path(os.path.abspath(Path(self.scheme_dict[scheme]) / path))
        if target not in self.verified.destinations:
            raise self._changed(path, "was not in the wheel that was checked")
        self.journal.claim(target)
        self.written.append((scheme, target))
        return super().write_to_fs(scheme, path, stream, is_executable)

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
    files: tuple[tuple[str, Path], ...]
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
    sources: dict[Path, InstalledWheel] = {}
    for wheel in wheels:
        for scheme, path in wheel.files:
            if scheme in ("purelib", "platlib") and path.suffix == ".py":
                sources[path] = wheel
    if not sources:
        return
    for cache in {path.parent / "__pycache__" for path in sources}:
        if not cache.exists():
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
                source = _source_of(pyc)
                if source in sources:
                    compiled.setdefault(sources[source].dist_info, []).append(pyc)
    for wheel in wheels:
        _append_to_record(wheel, compiled.get(wheel.dist_info, []))


def _compile(python: Path, paths: Sequence[Path], levels: Sequence[int]) -> bytes:
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
