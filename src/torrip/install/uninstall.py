"""Remove installed distributions by their RECORD, into a stash that can be put back.

Every path comes from the distribution's RECORD (relative to its site-packages,
so ``../../../bin/tool`` is a console script), plus the bytecode of its ``.py``
files and whatever else is in its ``.dist-info``. A path that resolves outside
the environment (its prefix and scheme directories) refuses the whole uninstall
before anything moves.

Files are not deleted but moved (renamed) into a ``Stash``: a directory in
site-packages that mirrors the absolute paths of what it holds, so it needs no
index to be put back, and a stash left by a crash can be restored by hand.

Usage::

    removed = uninstall(environment, ["requests"])      # locks, refreshes, commits

    stash = Stash.create(environment)                   # inside a transaction
    uninstall(environment, names, stash=stash.directory)
    ...
    stash.discard()        # or stash.restore()
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from packaging.utils import canonicalize_name

from torrip.environment import InstalledDistribution, TargetEnvironment
from torrip.errors import UninstallError
from torrip.install.lock import environment_lock
from torrip.install.signals import interrupts_deferred, terminations_interrupt

__all__ = [
    "Stash",
    "bytecode_files",
    "bytecode_pattern",
    "environment_roots",
    "is_inside",
    "uninstall",
]

_STASH_PREFIX = ".torrip-stash-"


class Stash:
    """A directory that holds moved-away files at their absolute paths, to restore or discard.

    Example::

        stash = Stash.create(environment)
        stash.put(Path("/venv/lib/python3.12/site-packages/pkg/__init__.py"))
        stash.restore()   # the file is back, with the directories it needed
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._root = directory / "root"

    @classmethod
    def create(cls, environment: TargetEnvironment) -> Stash:
        """A new, empty stash in the environment's site-packages (same filesystem: renames)."""
        purelib = Path(environment.scheme["purelib"])
        purelib.mkdir(parents=True, exist_ok=True)
        return cls(Path(tempfile.mkdtemp(prefix=_STASH_PREFIX, dir=purelib)))

    def _mirror(self, path: Path) -> Path:
        return self._root.joinpath(*path.parts[1:])

    def put(self, path: Path) -> None:
        """Move the file or symlink ``path`` into the stash."""
        target = self._mirror(path)
        self._make_parents(path.parent, target.parent)
        shutil.move(os.fspath(path), os.fspath(target))

    def _make_parents(self, original: Path, mirror: Path) -> None:
        """Create the mirror of ``original`` (and of its parents), with their modes."""
        if mirror.is_dir():
            return
        self._make_parents(original.parent, mirror.parent)
        mirror.mkdir()
        # restore() gives a re-created directory this mode; owner rwx keeps the stash usable.
        os.chmod(mirror, stat.S_IMODE(os.stat(original).st_mode) | stat.S_IRWXU)

    def restore(self) -> list[str]:
        """Put everything back where it was; returns what could not be put back."""
        problems: list[str] = []
        for mirror_dir, directories, files in os.walk(self._root):
            relative = Path(mirror_dir).relative_to(self._root)
            original_dir = Path("/", relative)
            if not original_dir.is_dir():
                try:
                    original_dir.mkdir()
                    os.chmod(original_dir, stat.S_IMODE(os.stat(mirror_dir).st_mode))
                except OSError as error:
                    problems.append(f"{original_dir}: {error.strerror or error}")
                    continue
            for name in [*files, *(d for d in directories if Path(mirror_dir, d).is_symlink())]:
                try:
                    os.rename(Path(mirror_dir, name), original_dir / name)
                except OSError:
                    try:
                        shutil.move(os.fspath(Path(mirror_dir, name)), original_dir / name)
                    except OSError as error:
                        problems.append(f"{original_dir / name}: {error.strerror or error}")
        if not problems:
            self.discard()
        return problems

    def discard(self) -> None:
        """Delete the stash and what it holds (the transaction committed)."""
        shutil.rmtree(self.directory, ignore_errors=True)


def environment_roots(environment: TargetEnvironment) -> tuple[Path, ...]:
    """The directories torrip may write to or delete from: the prefix and the scheme's."""
    roots = {Path(os.path.abspath(environment.prefix))}
    roots.update(Path(os.path.abspath(path)) for path in environment.scheme.values())
    return tuple(sorted(roots))


def is_inside(path: Path, roots: Iterable[Path]) -> bool:
    """Whether ``path`` is strictly inside one of ``roots``, both by name and after symlinks."""
    lexical = os.path.normpath(path)
    real_parent = os.path.realpath(os.path.dirname(lexical))
    return any(
        _strictly_under(lexical, os.path.normpath(root))
        and _under(real_parent, os.path.realpath(root))
        for root in roots
    )


def _strictly_under(path: str, root: str) -> bool:
    return path != root and os.path.commonpath([path, root]) == root


def _under(path: str, root: str) -> bool:
    return os.path.commonpath([path, root]) == root


_BYTECODE_NAME = r"^{stem}\.[^.]+(?:\.opt-[0-9]+)?\.pyc$"


def bytecode_pattern(stem: str) -> re.Pattern[str]:
    """Matches the names in ``__pycache__`` of the bytecode of ``stem.py``, any interpreter."""
    return re.compile(_BYTECODE_NAME.format(stem=re.escape(stem)))


def bytecode_files(source: Path) -> list[Path]:
    """The compiled files of ``source`` (a .py) that exist: __pycache__ for any interpreter."""
    if source.suffix != ".py":
        return []
    found = []
    legacy = source.with_suffix(".pyc")
    if legacy.is_file():
        found.append(legacy)
    cache = source.parent / "__pycache__"
    try:
        names = os.listdir(cache)
    except OSError:
        return found
    pattern = bytecode_pattern(source.stem)
    found.extend(cache / name for name in sorted(names) if pattern.match(name))
    return found


def uninstall(
    environment: TargetEnvironment, names: Iterable[str], *, stash: Path | None = None
) -> list[InstalledDistribution]:
    """Remove the distributions ``names`` from ``environment``; returns those removed.

    Names that are not installed are skipped. Without ``stash`` this takes the
    environment lock, re-reads what is installed, and deletes for good once every
    distribution is out (or puts everything back if one fails). With ``stash`` (a
    directory made by ``Stash.create``) the caller holds the lock and decides later
    whether to ``restore`` or ``discard`` it.
    """
    if stash is not None:
        return _uninstall_into(environment, names, Stash(stash))
    with environment_lock(environment), terminations_interrupt():
        # What another installer did meanwhile (it adds or removes .dist-info folders).
        current = environment.refresh_installed(if_listing_changed=True)
        own_stash = Stash.create(current)
        try:
            removed = _uninstall_into(current, names, own_stash)
        except BaseException:
            with interrupts_deferred():
                own_stash.restore()
            raise
        with interrupts_deferred():
            own_stash.discard()
        return removed


def _uninstall_into(
    environment: TargetEnvironment, names: Iterable[str], stash: Stash
) -> list[InstalledDistribution]:
    roots = environment_roots(environment)
    found: list[InstalledDistribution] = []
    for name in dict.fromkeys(canonicalize_name(name) for name in names):
        dist = environment.installed.get(name)
        if dist is not None:
            found.append(dist)
    # Plan every distribution first, so a refusal leaves the environment untouched.
    plans = [(dist, removal_paths(dist, roots)) for dist in found]
    stop_at = {os.path.normpath(root) for root in roots}
    stop_at.update(os.path.normpath(dist.location) for dist in found)
    for _dist, paths in plans:
        emptied: set[Path] = set()
        for path in paths:
            if os.path.lexists(path):
                stash.put(path)
                emptied.add(path.parent)
        _remove_empty_directories(emptied, stop_at)
    return found


def removal_paths(dist: InstalledDistribution, roots: Sequence[Path]) -> list[Path]:
    """Every file to remove for ``dist``, checked to lie inside ``roots``.

    Raises UninstallError for a distribution without RECORD (installed by an old
    setuptools as .egg-info), or whose RECORD points outside the environment.
    """
    label = f"{dist.display_name} {dist.version}"
    dist_info = Path(os.path.abspath(dist.dist_info))
    record = dist_info / "RECORD"
    if dist_info.suffix != ".dist-info" or not record.is_file():
        raise UninstallError(
            label,
            f"{dist_info} has no RECORD (installed by setuptools or distutils), so its "
            "files are unknown",
            hint=f"Remove {dist_info} and the files of {dist.display_name} by hand, or "
            "reinstall it with torrip or pip first.",
        )
    if not is_inside(dist_info, roots):
        raise UninstallError(
            label,
            f"it is installed at {dist.location}, outside the environment",
            hint="It belongs to another environment, the system, or the user's site "
            "(torrip uninstall --user); uninstall it there.",
        )
    location = Path(os.path.abspath(dist.location))
    paths: dict[Path, None] = {}
    try:
        with record.open(encoding="utf-8", newline="") as file:
            rows = list(csv.reader(file))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise UninstallError(label, f"cannot read {record}: {error}") from None
    for row in rows:
        if not row or not row[0]:
            continue
        path = Path(os.path.normpath(location / row[0]))  # absolute entries stay absolute
        if not is_inside(path, roots):
            raise UninstallError(
                label,
                f"its RECORD lists {row[0]!r}, which is outside the environment ({path})",
                hint=f"Nothing was removed. Check {record}; remove the files by hand if "
                "you trust it.",
            )
        if path.is_dir() and not path.is_symlink():
            continue
        paths[path] = None
        for compiled in bytecode_files(path):
            paths[compiled] = None
    # All of the .dist-info goes, even files its RECORD forgot: a partial one breaks tools.
    for directory, dirs, files in os.walk(dist_info):
        for name in files:
            paths[Path(directory, name)] = None
        for name in dirs:  # os.walk does not enter symlinked directories: move the link
            if Path(directory, name).is_symlink():
                paths[Path(directory, name)] = None
    return list(paths)


def _remove_empty_directories(directories: Iterable[Path], stop_at: set[str]) -> None:
    """Remove each directory that is now empty, then its parents, below ``stop_at``."""
    for start in sorted(directories, key=lambda path: len(path.parts), reverse=True):
        directory = start
        while os.path.normpath(directory) not in stop_at and directory != directory.parent:
            try:
                directory.rmdir()
            except OSError:  # not empty, or already gone
                break
            directory = directory.parent
