"""What the index needs to know about one distribution file, read from the file itself.

    info = inspect_distribution(Path("dist/my_pkg-1.0-py3-none-any.whl"))
    info.project, info.version, info.requires_python, info.metadata  # METADATA bytes

A file that is not a wheel or sdist, or that cannot be read, raises
``DistributionFileError`` with the reason; the builder reports it and goes on.
"""

from __future__ import annotations

import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from packaging.metadata import parse_email
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from torrip.errors import DistributionFileError

__all__ = ["DistributionInfo", "inspect_distribution", "is_distribution_filename"]

# Core metadata is a few KiB; anything this large is not a METADATA file.
_MAX_METADATA_BYTES = 16 * 1024 * 1024
_SDIST_SUFFIXES = (".tar.gz", ".zip")


@dataclass(frozen=True)
class DistributionInfo:
    """The facts of one distribution file that an index page lists."""

    filename: str
    project: NormalizedName
    display_name: str
    version: Version
    kind: str  # "wheel" or "sdist"
    # Two files with the same identity would be the same file to an installer.
    identity: tuple[str, ...]
    requires_python: str | None
    # The exact bytes of the wheel's METADATA (PEP 658); None for sdists.
    metadata: bytes | None


def is_distribution_filename(filename: str) -> bool:
    return filename.endswith(".whl") or filename.endswith(_SDIST_SUFFIXES)


def inspect_distribution(path: Path) -> DistributionInfo:
    """Read the name, version and metadata of a wheel or sdist; raise DistributionFileError."""
    filename = path.name
    if filename.endswith(".whl"):
        return _inspect_wheel(path)
    if filename.endswith(_SDIST_SUFFIXES):
        return _inspect_sdist(path)
    raise DistributionFileError(path, "not a distribution file (expected .whl, .tar.gz or .zip)")


def _inspect_wheel(path: Path) -> DistributionInfo:
    try:
        name, version, build, tags = parse_wheel_filename(path.name)
    except (InvalidWheelFilename, InvalidVersion) as exc:
        raise DistributionFileError(path, f"invalid wheel file name: {exc}") from None
    try:
        with zipfile.ZipFile(path) as archive:
            metadata = _read_wheel_metadata(path, archive, name, version)
            broken = archive.testzip()
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as exc:
        raise DistributionFileError(path, f"not a readable zip archive: {exc}") from None
    if broken is not None:
        raise DistributionFileError(path, f"corrupt zip archive: {broken} fails its CRC check")
    display_name, metadata_version, requires_python = _core_fields(path, metadata, "METADATA")
    _check_identity(path, name, version, display_name, metadata_version, "METADATA")
    build_part = () if not build else (str(build[0]), build[1])
    return DistributionInfo(
        filename=path.name,
        project=name,
        display_name=display_name,
        version=version,
        kind="wheel",
        identity=("wheel", name, str(version), *map(str, build_part), *sorted(map(str, tags))),
        requires_python=requires_python,
        metadata=metadata,
    )


def _read_wheel_metadata(
    path: Path, archive: zipfile.ZipFile, name: NormalizedName, version: Version
) -> bytes:
    candidates = []
    for member in archive.namelist():
        parts = member.split("/")
        if len(parts) == 2 and parts[1] == "METADATA" and parts[0].endswith(".dist-info"):
            candidates.append(member)
    expected = [
        member
        for member in candidates
        if _dist_info_matches(member.split("/")[0][: -len(".dist-info")], name, version)
    ]
    if len(expected) != 1:
        found = ", ".join(candidates) or "none"
        raise DistributionFileError(
            path,
            f"expected one {name}-{version}.dist-info/METADATA in the wheel, found: {found}",
        )
    info = archive.getinfo(expected[0])
    if info.file_size > _MAX_METADATA_BYTES:
        raise DistributionFileError(path, f"{expected[0]} is too large ({info.file_size} bytes)")
    return archive.read(info)


def _dist_info_matches(stem: str, name: NormalizedName, version: Version) -> bool:
    dist_name, _, dist_version = stem.rpartition("-")
    try:
        return canonicalize_name(dist_name) == name and Version(dist_version) == version
    except InvalidVersion:
        return False


def _inspect_sdist(path: Path) -> DistributionInfo:
    try:
        name, version = parse_sdist_filename(path.name)
    except (InvalidSdistFilename, InvalidVersion) as exc:
        raise DistributionFileError(path, f"invalid sdist file name: {exc}") from None
    try:
        pkg_info = _read_sdist_pkg_info(path)
    except (tarfile.TarError, zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as exc:
        raise DistributionFileError(path, f"not a readable archive: {exc}") from None
    requires_python: str | None = None
    display_name: str = name
    if pkg_info is not None:
        display_name, metadata_version, requires_python = _core_fields(path, pkg_info, "PKG-INFO")
        _check_identity(path, name, version, display_name, metadata_version, "PKG-INFO")
    return DistributionInfo(
        filename=path.name,
        project=name,
        display_name=display_name,
        version=version,
        kind="sdist",
        identity=("sdist", name, str(version), path.name.rsplit(".", 1)[-1]),
        requires_python=requires_python,
        metadata=None,
    )


def _read_sdist_pkg_info(path: Path) -> bytes | None:
    """PKG-INFO of the sdist's top folder, or None if it has none. Reads the whole archive."""
    if path.name.endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            if archive.testzip() is not None:
                raise zipfile.BadZipFile("a member's checksum does not match")
            members = [m for m in archive.namelist() if _is_top_pkg_info(m)]
            return archive.read(members[0]) if members else None
    pkg_info: bytes | None = None
    with tarfile.open(path, mode="r:gz") as archive:
        # Reading every member checks the gzip stream to its end, catching truncation.
        for member in archive:
            if member.isfile() and _is_top_pkg_info(member.name) and pkg_info is None:
                if member.size > _MAX_METADATA_BYTES:
                    raise ValueError(f"{member.name} is too large ({member.size} bytes)")
                extracted = archive.extractfile(member)
                if extracted is not None:
                    pkg_info = extracted.read()
    return pkg_info


def _is_top_pkg_info(member: str) -> bool:
    parts = member.strip("/").split("/")
    return len(parts) == 2 and parts[1] == "PKG-INFO"


def _core_fields(path: Path, data: bytes, what: str) -> tuple[str, str | None, str | None]:
    """(Name, Metadata-Version, Requires-Python) of a core metadata file."""
    raw, _unparsed = parse_email(data)
    name = raw.get("name")
    if not name:
        raise DistributionFileError(path, f"{what} has no Name field")
    return name, raw.get("version"), raw.get("requires_python")


def _check_identity(
    path: Path,
    name: NormalizedName,
    version: Version,
    metadata_name: str,
    metadata_version: str | None,
    what: str,
) -> None:
    if canonicalize_name(metadata_name) != name:
        raise DistributionFileError(
            path, f"{what} names project {metadata_name!r}, but the file name says {name!r}"
        )
    try:
        matches = metadata_version is not None and Version(metadata_version) == version
    except InvalidVersion:
        matches = False
    if not matches:
        raise DistributionFileError(
            path,
            f"{what} has version {metadata_version!r}, but the file name says {str(version)!r}",
        )
