"""Read a PEP 751 lockfile and select what it installs into a target environment.

``packaging.pylock`` parses, validates and selects (markers, tags, requires-python,
extras, dependency groups, as the PEP specifies); this module turns its answers into
files torrip can fetch, and its errors into messages that name the package and say why.

    lock = load_lockfile(Path("pylock.toml"))
    for locked in select_files(lock, Path("pylock.toml"), environment):
        locked.url, locked.hashes, locked.torrent
"""

from __future__ import annotations

import hashlib
import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import cast
from urllib.parse import unquote, urldefrag, urlsplit

from packaging.markers import Environment
from packaging.pylock import (
    Package,
    PackageArchive,
    PackageDirectory,
    PackageSdist,
    PackageVcs,
    PackageWheel,
    Pylock,
    PylockSelectError,
    PylockUnsupportedVersionError,
    PylockValidationError,
)
from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import Version

from torrip.environment import TargetEnvironment
from torrip.errors import LockfileError
from torrip.index.links import TorrentRef
from torrip.lockfile.parsed import parse_lockfile_toml
from torrip.lockfile.tooldata import torrents_from_tool

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "LockedFile",
    "load_lockfile",
    "select_files",
]

Log = Callable[[str], None]

# packaging.pylock warns about a newer minor lock-version through logging, which would
# print a bare line; load_lockfile says it through torrip's output instead.
logging.getLogger("packaging.pylock").addHandler(logging.NullHandler())

_WHEELS_ONLY = (
    "torrip installs wheels only. Lock for an environment that has wheels of every "
    "package, or build the missing wheels and lock from a --find-links folder."
)


@dataclass(frozen=True)
class LockedFile:
    """One wheel the lock selects for the target: where it is and what it must hash to."""

    name: NormalizedName
    version: Version
    filename: str
    url: str  # http(s), or file: for a path relative to the lockfile
    hashes: Mapping[str, str]  # algorithm -> lowercase hex, algorithms hashlib knows
    size: int | None
    upload_time: str | None
    index: str | None
    torrent: TorrentRef | None
    requires_python: str | None
    direct: bool  # a [packages.archive] direct reference, not a file of an index

    @property
    def allowed_hashes(self) -> frozenset[str]:
        return frozenset(f"{algorithm}:{digest}" for algorithm, digest in self.hashes.items())


def load_lockfile(
    path: Path, *, warn: Log = lambda _: None, cache_dir: Path | None = None
) -> Pylock:
    """Parse and validate ``path``; LockfileError says what is wrong and where.

    ``cache_dir``: where the parsed TOML of each lockfile read is kept (``parsed``)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise LockfileError(
            path,
            f"cannot read the lockfile: {error.strerror or error}",
            hint="Check the path given to -r (relative to the current directory).",
        ) from None
    try:
        document = parse_lockfile_toml(data, cache_dir)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise LockfileError(
            path,
            f"not valid TOML: {error}",
            hint="Write the lockfile again (torrip lock, uv pip compile -o pylock.toml, pip lock).",
        ) from None
    try:
        lock = Pylock.from_dict(document)
    except PylockUnsupportedVersionError as error:
        raise LockfileError(
            path,
            f"lock-version {document.get('lock-version')!r} is not supported ({error})",
            hint="torrip reads PEP 751 lock-version 1.x. Upgrade torrip, or write the lock "
            "with a tool that writes version 1.0.",
        ) from None
    except PylockValidationError as error:
        raise LockfileError(
            path,
            f"not a valid PEP 751 lockfile: {error}",
            hint="Fix the entry named above, or write the lockfile again.",
        ) from None
    if lock.lock_version > Version("1.0"):
        warn(f"{path} has lock-version {lock.lock_version}; torrip knows 1.0 and reads it as such")
    return lock


def select_files(
    lock: Pylock,
    path: Path,
    environment: TargetEnvironment,
    *,
    extras: frozenset[str] = frozenset(),
    log: Log = lambda _: None,
) -> list[LockedFile]:
    """The wheels the lock installs into ``environment``, one per selected package."""
    markers = cast(Environment, dict(environment.markers))
    try:
        selected = list(lock.select(environment=markers, tags=environment.tags, extras=extras))
    except PylockSelectError as error:
        raise LockfileError(
            path, f"does not fit {environment.python} ({_python_of(environment)}): {error}"
        ) from None
    return [_locked_file(package, chosen, path, environment, log) for package, chosen in selected]


def _python_of(environment: TargetEnvironment) -> str:
    markers = environment.markers
    return (
        f"{markers['implementation_name']} {markers['python_full_version']} on "
        f"{markers['sys_platform']} {markers['platform_machine']}"
    )


def _locked_file(
    package: Package,
    chosen: PackageWheel | PackageSdist | PackageArchive | PackageVcs | PackageDirectory,
    path: Path,
    environment: TargetEnvironment,
    log: Log,
) -> LockedFile:
    what = f"{package.name} {package.version}" if package.version else package.name
    if isinstance(chosen, PackageSdist):
        listed = ", ".join(w.filename for w in package.wheels or ()) or "none"
        raise LockfileError(
            path,
            f"{what}: no wheel in the lock fits {_python_of(environment)} "
            f"(wheels listed: {listed}); only the source distribution {chosen.filename} does",
            hint=_WHEELS_ONLY,
        )
    if isinstance(chosen, (PackageVcs, PackageDirectory)):
        kind = "version control" if isinstance(chosen, PackageVcs) else "a local directory"
        raise LockfileError(path, f"{what} is installed from {kind}", hint=_WHEELS_ONLY)
    url = _location(chosen.url, chosen.path, path, what)
    filename = chosen.filename if isinstance(chosen, PackageWheel) else _url_filename(url)
    if not filename.endswith(".whl"):
        raise LockfileError(path, f"{what}: {filename} is not a wheel", hint=_WHEELS_ONLY)
    try:
        _name, file_version, _build, _tags = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        raise LockfileError(path, f"{what}: {filename!r} is not a valid wheel name") from None
    hashes = {
        algorithm.lower(): digest.lower()
        for algorithm, digest in chosen.hashes.items()
        if algorithm.lower() in hashlib.algorithms_guaranteed
    }
    if not hashes:
        raise LockfileError(
            path,
            f"{what}: none of the hashes of {filename} ({', '.join(chosen.hashes)}) is one "
            "torrip can check",
            hint="Lock with sha256 hashes.",
        )
    torrents = torrents_from_tool(package.tool, log)
    return LockedFile(
        name=canonicalize_name(package.name),
        version=package.version or file_version,
        filename=filename,
        url=url,
        hashes=hashes,
        size=chosen.size,
        upload_time=_iso(chosen.upload_time),
        index=package.index,
        torrent=torrents.get(filename),
        requires_python=str(package.requires_python) if package.requires_python else None,
        direct=isinstance(chosen, PackageArchive),
    )


def _location(url: str | None, relative: str | None, lockfile: Path, what: str) -> str:
    """An http(s) or file URL; PEP 751 paths are relative to the lockfile's directory."""
    if url:
        if urlsplit(url).scheme not in ("http", "https", "file"):
            raise LockfileError(
                lockfile,
                f"{what}: cannot fetch {url!r}",
                hint="Lock files with http(s) or file URLs, or paths relative to the lockfile.",
            )
        return urldefrag(url).url
    assert relative is not None  # packaging checks that one of the two is there
    return (lockfile.parent / relative).resolve().as_uri()


def _url_filename(url: str) -> str:
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1])


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
