"""Install one verified, unpacked wheel: link its files, write what is generated, journal all.

The wheel's files come from its unpacked tree (``unpacked.py``, already checked against
RECORD): each is hard-linked into the scheme (``link_mode="hardlink"``, the default), or,
where links cannot be made (another file system) or with ``link_mode="copy"``, reflinked
or copied. What depends on the target is written fresh, never linked: console-script
launchers and ``#!python`` scripts (bound to the target interpreter), INSTALLER, REQUESTED,
direct_url.json and RECORD. Nothing here writes into an existing file or changes a linked
file's mode, so the unpacked cache is never modified through an install.

Every path is claimed in a journal first (so a failed transaction can delete it), and a
file in the way is moved aside (as pip overwrites, but undoably). Bytecode is compiled
afterwards by the target interpreter.

Usage::

    journal = WriteJournal(displace=stash.put)
    installed = install_wheel(unpacked.place(scheme), interpreter=env.python,
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
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from installer.scripts import Script
from installer.utils import fix_shebang

from torrip.errors import InstallError
from torrip.install.placing import FilePlacer, FileToPlace, LinkMode
from torrip.install.safety import VerifiedWheel
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
        self.claim_all((target,))

    def claim_all(self, targets: Sequence[str]) -> None:
        """``claim`` each of ``targets``, under one hold of the lock: a wheel's files at once."""
        if self.cancelled.is_set():
            raise TransactionCancelled
        created = self._created
        with self._lock:
            for target in targets:
                directory, name = _split(target)
                names = self._names_in(directory)
                if target in created:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(target)  # written earlier in this transaction: last wins
                    self.created_files.append(target)
                    continue
                if name in names:
                    if os.path.isdir(target) and not os.path.islink(target):
                        raise InstallError(f"cannot install {target}: a directory is in the way")
                    self._displace(Path(target))
                # Bytecode of what was there (or orphaned) goes too: undo() deletes any it finds.
                if name.endswith(".py") and (f"{name[:-3]}.pyc" in names or "__pycache__" in names):
                    for compiled in self._bytecode_of(directory, names, name[:-3]):
                        self._displace(Path(compiled))
                created.add(target)
                self.created_files.append(target)

    def _names_in(self, directory: str) -> set[str]:
        """The names in ``directory`` but the files written since; creates it if missing."""
        names = self._names.get(directory)
        if names is None:
            parent, name = os.path.split(directory)
            # Made first, asked after: in a new environment nearly every directory is new,
            # and one mkdir says so (a stat and an lstat each cost as much).
            names = None
            try:
                os.mkdir(directory)
            except FileNotFoundError:
                self._names_in(parent)  # creates the parents first
                os.mkdir(directory)
            except OSError as error:  # there already (or, read-only, refused: is it there?)
                if not os.path.isdir(directory):
                    if isinstance(error, FileExistsError):
                        raise InstallError(
                            f"cannot create the directory {directory}: a file is in the way"
                        ) from None
                    raise
                names = set(os.listdir(directory))
            if names is None:
                self._names_in(parent).add(name)
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


def _split(path: str) -> tuple[str, str]:
    """``os.path.split`` of a normalized absolute path below the root, at a tenth of the
    cost where there is one separator (runs once per file written)."""
    if os.altsep is None:
        directory, _, name = path.rpartition(os.sep)
        return directory, name
    return os.path.split(path)  # pragma: no cover - Windows: either separator


def _remove_tree(directory: Path) -> None:
    if directory.is_symlink() or not directory.exists():
        return
    for child in directory.iterdir():
        if child.is_dir() and not child.is_symlink():
            _remove_tree(child)
        else:
            child.unlink()
    directory.rmdir()


class _RecordPrefixes(dict[str, str]):
    """Scheme -> what RECORD puts before a path in it (relative to the root scheme's
    directory), worked out for the schemes a wheel uses: most use one or two of eight."""

    def __init__(self, roots: Mapping[str, str], root_scheme: str) -> None:
        super().__init__({root_scheme: ""})
        self._roots = roots
        self._root = roots[root_scheme]

    def __missing__(self, scheme: str) -> str:
        prefix = self[scheme] = os.path.relpath(self._roots[scheme], self._root) + "/"
        return prefix


def _record_text(rows: Sequence[tuple[str, str, str, object]]) -> str:
    """RECORD's CSV text of ``rows`` ((path in scheme, path, hash, size), the first
    ignored), as ``csv.writer(lineterminator="\\n")`` writes it: joined directly, ten times
    faster than the csv module, unless a field needs quoting (checked once, on the text)."""
    text = "".join([f"{path},{digest},{size}\n" for _, path, digest, size in rows])
    # csv quotes a field holding a comma, a quote, a carriage return or a line feed.
    plain = text.count(",") == 2 * len(rows) and text.count("\n") == len(rows)
    if plain and '"' not in text and "\r" not in text:
        return text
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(row[1:] for row in rows)
    return buffer.getvalue()


def _record_digest(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


def _write_new(target: str, data: bytes, executable: bool) -> None:
    with open(target, "wb") as file:
        file.write(data)
    if executable:
        mode = os.stat(target).st_mode
        os.chmod(target, mode | (mode & 0o444) >> 2)


class InstalledWheel(NamedTuple):
    """A wheel that ``install_wheel`` wrote."""

    verified: VerifiedWheel
    root: Path
    """The scheme directory holding the .dist-info (RECORD paths are relative to it)."""
    dist_info: Path
    files: tuple[tuple[str, str], ...]
    """(scheme, absolute path) of every file written."""
    linked: int = 0
    """Files hard-linked from the unpacked cache."""
    copied: int = 0
    """Files copied (or reflinked) from it; generated files are counted in neither."""


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
    *,
    interpreter: Path,
    script_kind: LauncherKind,
    journal: WriteJournal,
    requested: bool,
    direct_url: Mapping[str, Any] | None = None,
    link_mode: LinkMode = "hardlink",
    deferred: list[FileToPlace] | None = None,
) -> InstalledWheel:
    """Install the unpacked wheel ``verified`` (``UnpackedWheel.place``) into its scheme.

    Scripts' shebangs name ``interpreter``. Writes INSTALLER (``torrip``), REQUESTED when
    ``requested``, direct_url.json when ``direct_url`` is given, and RECORD, listing each
    file with the sha256 its bytes had when they were unpacked. Every path written is
    claimed in ``journal`` first.

    With ``deferred``, the files of the tree are claimed but not placed: they are added to
    it, for the caller to place (``placing.Placement``), and counted in neither ``linked``
    nor ``copied``.
    """
    if verified.tree is None:
        raise ValueError(f"{verified.path.name} is not unpacked (see torrip.install.unpacked)")
    layout = verified.layout
    roots = verified.roots
    root = roots[layout.root_scheme]
    prefixes = _RecordPrefixes(roots, layout.root_scheme)
    placer = FilePlacer(link_mode)
    tree = os.fspath(verified.tree) + os.sep
    # RECORD rows, sorted by path in scheme as installer sorts them: the tree's files', and
    # by (scheme, path in it) the files written here (a script written twice, as an entry
    # point and as a file, is listed once, as written last).
    rows: list[tuple[str, str, str, object]] = []
    generated: dict[tuple[str, str], tuple[str, str, str, object]] = {}
    written: list[tuple[str, str]] = []

    def write_generated(scheme: str, path: str, data: bytes, executable: bool) -> None:
        target = os.path.join(roots[scheme], path)
        journal.claim(target)
        _write_new(target, data, executable)
        written.append((scheme, target))
        generated[scheme, path] = (path, prefixes[scheme] + path, _record_digest(data), len(data))

    for script in layout.scripts:
        name, data = Script(*script).generate(os.fspath(interpreter), script_kind)  # type: ignore[arg-type]
        write_generated("scripts", name, data, True)
    dist_info = layout.dist_info
    # What the tree holds of these is replaced by what is written below: never placed.
    replaced = {f"{dist_info}/INSTALLER"}
    if requested:
        replaced.add(f"{dist_info}/REQUESTED")
    if direct_url is not None:
        replaced.add(f"{dist_info}/direct_url.json")
    root_scheme = layout.root_scheme
    pairs = list(zip(layout.files, verified.targets, strict=True))
    journal.claim_all([target for file, target in pairs if file.scheme != "scripts"])
    place = placer.place
    # Fields unpacked once: this runs for every file of every wheel (11,528 for jupyterlab).
    for (member, scheme, path, digest, size, executable), target in pairs:
        if scheme == "scripts":  # a #!python shebang names the target: never linked
            with (
                open(tree + member, "rb") as original,
                fix_shebang(original, os.fspath(interpreter)) as fixed,
            ):
                write_generated("scripts", path, fixed.read(), executable)
            continue
        if path in replaced and scheme == root_scheme:
            continue
        if deferred is None:
            place(tree + member, target, executable)
        else:
            deferred.append((tree + member, target, executable))
        written.append((scheme, target))
        rows.append((path, prefixes[scheme] + path, digest, size))
    write_generated(
        layout.root_scheme, f"{dist_info}/INSTALLER", f"{INSTALLER_NAME}\n".encode(), False
    )
    if requested:
        write_generated(layout.root_scheme, f"{dist_info}/REQUESTED", b"", False)
    if direct_url is not None:
        data = json.dumps(dict(direct_url), sort_keys=True).encode()
        write_generated(layout.root_scheme, f"{dist_info}/direct_url.json", data, False)
    record_path = f"{dist_info}/RECORD"
    rows += generated.values()
    rows.append((record_path, record_path, "", ""))
    rows.sort(key=itemgetter(0))
    target = os.path.join(root, record_path)
    journal.claim(target)
    _write_new(target, _record_text(rows).encode("utf-8"), False)
    written.append((layout.root_scheme, target))
    return InstalledWheel(
        verified=verified,
        root=Path(root),
        dist_info=Path(root, dist_info),
        files=tuple(written),
        linked=placer.linked,
        copied=placer.copied,
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
