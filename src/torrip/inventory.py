"""What is installed in an environment, as ``pip list``, ``freeze``, ``show`` and ``check`` tell it.

The environment probe (``torrip.environment``) finds the distributions on the
target's ``sys.path``; this module reads the few extra metadata fields these
commands need from each ``.dist-info`` on disk and returns frozen results. The
CLI renders them (``torrip.cli.inventory``).

Markers are evaluated for the target interpreter, with no extra requested, as
pip does when it runs inside the target.

Usage::

    environment = inspect_environment(find_target_python(None))
    list_packages(environment)              # (Package(name='demo', version='1.0', ...), ...)
    freeze_lines(environment)               # ('demo==1.0', ...)
    show_packages(environment, ["demo"])    # ShowResult(found=(PackageDetails(...),), missing=())
    check_requirements(environment).ok     # False when a requirement is missing or conflicts
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from functools import reduce
from pathlib import Path
from urllib.parse import unquote, urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.tags import Tag, parse_tag
from packaging.utils import NormalizedName, canonicalize_name

from torrip.environment import InstalledDistribution, TargetEnvironment

__all__ = [
    "STDLIB_NAMES",
    "CheckResult",
    "ConflictingRequirement",
    "MissingRequirement",
    "Package",
    "PackageDetails",
    "ShowResult",
    "UnreadableRequirement",
    "UnsupportedDistribution",
    "check_requirements",
    "dev_package_names",
    "freeze_lines",
    "list_packages",
    "show_packages",
]

STDLIB_NAMES = frozenset({"python", "wsgiref", "argparse"})
"""Names pip never lists: old Pythons registered parts of the standard library as distributions."""


def dev_package_names(python_version: Sequence[int]) -> frozenset[str]:
    """What ``freeze`` leaves out unless ``--all``: pip, and its build tools before Python 3.12."""
    if tuple(python_version[:2]) < (3, 12):
        return frozenset({"pip", "setuptools", "distribute", "wheel"})
    return frozenset({"pip"})


# ---------------------------------------------------------------------------
# list


@dataclass(frozen=True)
class Package:
    """One row of ``torrip list``."""

    name: str
    """As the distribution's metadata spells it."""
    version: str
    """As its metadata writes it (the columns format shows this)."""
    normalized_version: str
    """PEP 440 normalized (the json and freeze formats show this)."""
    location: Path
    installer: str
    editable_location: Path | None
    build_tag: str | None
    """The wheel's build number, from its WHEEL file."""


def list_packages(environment: TargetEnvironment) -> tuple[Package, ...]:
    """Every installed distribution, sorted by normalized name, as ``pip list`` shows them."""
    packages = []
    for dist in sorted(environment.installed.values(), key=lambda dist: dist.name):
        if dist.name in STDLIB_NAMES:
            continue
        metadata = _metadata(dist)
        packages.append(
            Package(
                name=dist.display_name,
                version=metadata.get("Version", "") or str(dist.version),
                normalized_version=str(dist.version),
                location=dist.location,
                installer=dist.installer or "",
                editable_location=_editable_location(dist),
                build_tag=_wheel_headers(dist).get("Build"),
            )
        )
    return tuple(packages)


# ---------------------------------------------------------------------------
# freeze


def freeze_lines(environment: TargetEnvironment, *, include_all: bool = False) -> tuple[str, ...]:
    """``pip freeze``'s lines: ``name==version``, or a PEP 440 direct reference, or ``-e``.

    Sorted case-insensitively by name. Without ``include_all``, pip and (before
    Python 3.12) setuptools, distribute and wheel are left out, as pip does.
    """
    skip = set(STDLIB_NAMES)
    if not include_all:
        skip |= dev_package_names(environment.python_version)
    lines: list[str] = []
    for dist in sorted(environment.installed.values(), key=lambda d: d.display_name.lower()):
        if dist.name not in skip:
            lines.extend(_frozen(dist))
    return tuple(lines)


def _frozen(dist: InstalledDistribution) -> list[str]:
    pinned = f"{dist.display_name}=={dist.version}"
    direct_url = _direct_url(dist)
    editable = _editable_location(dist)
    if editable is not None:
        # pip asks git, hg, svn or bzr for the checkout's URL; torrip does not (yet).
        return [f"# Editable install with no version control ({pinned})", f"-e {editable}"]
    if direct_url is None:
        return [pinned]
    return [_direct_reference(dist.display_name, direct_url) or pinned]


def _direct_reference(name: str, direct_url: dict[str, object]) -> str | None:
    """``name @ url`` from PEP 610 data, as pip writes it; None if the data is unusable."""
    url = direct_url.get("url")
    if not isinstance(url, str):
        return None
    fragments = []
    vcs_info = direct_url.get("vcs_info")
    archive_info = direct_url.get("archive_info")
    if isinstance(vcs_info, dict):
        reference = f"{name} @ {vcs_info.get('vcs')}+{url}@{vcs_info.get('commit_id')}"
    else:
        reference = f"{name} @ {url}"
        if isinstance(archive_info, dict):
            hashes = archive_info.get("hashes")
            legacy = archive_info.get("hash")
            if isinstance(hashes, dict) and hashes:
                algorithm, value = next(iter(hashes.items()))
                fragments.append(f"{algorithm}={value}")
            elif isinstance(legacy, str) and "=" in legacy:
                fragments.append(legacy)
    subdirectory = direct_url.get("subdirectory")
    if isinstance(subdirectory, str) and subdirectory:
        fragments.append(f"subdirectory={subdirectory}")
    return reference + ("#" + "&".join(fragments) if fragments else "")


# ---------------------------------------------------------------------------
# show


@dataclass(frozen=True)
class PackageDetails:
    """What ``torrip show`` tells about one distribution (empty strings for absent fields)."""

    name: str
    version: str
    summary: str
    home_page: str
    author: str
    author_email: str
    license: str
    license_expression: str
    metadata_version: str
    location: Path
    editable_location: Path | None
    requires: tuple[str, ...]
    """Names of the requirements whose markers hold here, as written, sorted."""
    required_by: tuple[str, ...]
    """Names of the installed distributions that require this one, sorted."""
    installer: str
    classifiers: tuple[str, ...]
    entry_points: tuple[str, ...]
    project_urls: tuple[str, ...]
    files: tuple[str, ...] | None
    """The RECORD's paths, relative to ``location``; None without a RECORD."""


@dataclass(frozen=True)
class ShowResult:
    found: tuple[PackageDetails, ...]
    """In the order asked for."""
    missing: tuple[str, ...]
    """The names asked for that are not installed, as given, sorted."""


def show_packages(environment: TargetEnvironment, names: Iterable[str]) -> ShowResult:
    """Details of the installed distributions ``names``; the names not installed apart."""
    asked = list(names)
    installed = environment.installed
    missing = sorted(name for name in asked if canonicalize_name(name) not in installed)
    found = []
    for name in dict.fromkeys(canonicalize_name(name) for name in asked):
        dist = installed.get(name)
        if dist is not None:
            found.append(_details(environment, dist))
    return ShowResult(tuple(found), tuple(missing))


def _details(environment: TargetEnvironment, dist: InstalledDistribution) -> PackageDetails:
    metadata = _metadata(dist)
    try:
        requires = sorted({req.name for req in _dependencies(environment, dist)}, key=str.lower)
    except InvalidRequirement:
        requires = sorted(dist.requires_dist, key=str.lower)
    try:
        required_by = sorted(
            (
                other.display_name
                for other in environment.installed.values()
                if dist.name
                in {canonicalize_name(r.name) for r in _dependencies(environment, other)}
            ),
            key=str.lower,
        )
    except InvalidRequirement:
        required_by = ["#N/A"]
    project_urls = metadata.get_all("Project-URL") or []
    return PackageDetails(
        name=dist.display_name,
        version=metadata.get("Version", "") or str(dist.version),
        summary=metadata.get("Summary", ""),
        home_page=metadata.get("Home-page", "") or _homepage_url(project_urls),
        author=metadata.get("Author", ""),
        author_email=metadata.get("Author-email", ""),
        license=metadata.get("License", ""),
        license_expression=metadata.get("License-Expression", ""),
        metadata_version=metadata.get("Metadata-Version", ""),
        location=dist.location,
        editable_location=_editable_location(dist),
        requires=tuple(requires),
        required_by=tuple(required_by),
        installer=dist.installer or "",
        classifiers=tuple(metadata.get_all("Classifier") or []),
        entry_points=tuple(_read_text(dist.dist_info / "entry_points.txt").splitlines()),
        project_urls=tuple(project_urls),
        files=_record_paths(dist),
    )


def _homepage_url(project_urls: Iterable[str]) -> str:
    """The URL labelled "homepage" (PEP 753 normalization), which pyproject.toml projects use."""
    for entry in project_urls:
        label, comma, url = entry.partition(",")
        if comma and "".join(c for c in label if c.isalnum()).lower() == "homepage":
            return url.strip()
    return ""


def _record_paths(dist: InstalledDistribution) -> tuple[str, ...] | None:
    text = _read_text(dist.dist_info / "RECORD")
    if not text:
        return None
    try:
        rows = list(csv.reader(text.splitlines()))
    except csv.Error:
        return None
    return tuple(sorted(str(Path(row[0])) for row in rows if row and row[0]))


# ---------------------------------------------------------------------------
# check


@dataclass(frozen=True)
class MissingRequirement:
    """``project version`` requires ``requirement``, and nothing of that name is installed."""

    project: NormalizedName
    version: str
    requirement: Requirement

    @property
    def dependency(self) -> NormalizedName:
        return canonicalize_name(self.requirement.name)


@dataclass(frozen=True)
class ConflictingRequirement:
    """``project version`` requires ``requirement``, but ``installed_version`` is installed."""

    project: NormalizedName
    version: str
    requirement: Requirement
    installed_version: str

    @property
    def dependency(self) -> NormalizedName:
        return canonicalize_name(self.requirement.name)


@dataclass(frozen=True)
class UnreadableRequirement:
    """A Requires-Dist entry that is not a valid requirement."""

    project: NormalizedName
    text: str
    reason: str


@dataclass(frozen=True)
class UnsupportedDistribution:
    """A wheel installed here whose tags this interpreter does not support."""

    name: str
    version: str


@dataclass(frozen=True)
class CheckResult:
    missing: tuple[MissingRequirement, ...]
    conflicts: tuple[ConflictingRequirement, ...]
    unreadable: tuple[UnreadableRequirement, ...]
    unsupported: tuple[UnsupportedDistribution, ...]

    @property
    def ok(self) -> bool:
        return not (self.missing or self.conflicts or self.unreadable or self.unsupported)


def check_requirements(environment: TargetEnvironment) -> CheckResult:
    """Whether every installed distribution's requirements are installed, in a matching version.

    Requirements whose markers do not hold for the target, and those of extras, are
    ignored; pre-releases satisfy any specifier. Sorted by project, then dependency.
    """
    installed = environment.installed
    markers = environment.marker_environment()
    missing: list[MissingRequirement] = []
    conflicts: list[ConflictingRequirement] = []
    unreadable: list[UnreadableRequirement] = []
    for name in sorted(installed):
        dist = installed[name]
        version = str(dist.version)
        found_missing: dict[str, MissingRequirement] = {}
        found_conflicts: dict[str, ConflictingRequirement] = {}
        for text in dist.requires_dist:
            try:
                requirement = Requirement(text)
            except InvalidRequirement as error:
                unreadable.append(UnreadableRequirement(name, text, str(error)))
                continue
            if requirement.marker is not None and not requirement.marker.evaluate(markers):
                continue
            other = installed.get(canonicalize_name(requirement.name))
            if other is None:
                found_missing[str(requirement)] = MissingRequirement(name, version, requirement)
            elif not requirement.specifier.contains(other.version, prereleases=True):
                found_conflicts[str(requirement)] = ConflictingRequirement(
                    name, version, requirement, str(other.version)
                )
        missing.extend(sorted(found_missing.values(), key=lambda m: (m.dependency, str(m))))
        conflicts.extend(sorted(found_conflicts.values(), key=lambda c: (c.dependency, str(c))))
    return CheckResult(
        tuple(missing), tuple(conflicts), tuple(unreadable), tuple(_unsupported(environment))
    )


def _unsupported(environment: TargetEnvironment) -> Iterator[UnsupportedDistribution]:
    supported = frozenset(environment.tags)
    for dist in sorted(environment.installed.values(), key=lambda dist: dist.name):
        tags = _wheel_headers(dist).get_all("Tag")
        if not tags:
            continue
        try:
            declared: frozenset[Tag] = reduce(frozenset.union, map(parse_tag, tags), frozenset())
        except ValueError:
            continue
        if declared.isdisjoint(supported):
            yield UnsupportedDistribution(dist.display_name, str(dist.version))


# ---------------------------------------------------------------------------
# reading a distribution's files


def _dependencies(
    environment: TargetEnvironment, dist: InstalledDistribution
) -> Iterator[Requirement]:
    """The requirements of ``dist`` whose markers hold for the target, without extras."""
    markers = environment.marker_environment()
    for text in dist.requires_dist:
        requirement = Requirement(text)
        if requirement.marker is None or requirement.marker.evaluate(markers):
            yield requirement


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _metadata(dist: InstalledDistribution) -> Message:
    """The core metadata headers: METADATA, or PKG-INFO of an .egg-info (dir or file)."""
    path = dist.dist_info
    if path.is_dir():
        path = path / ("PKG-INFO" if path.suffix == ".egg-info" else "METADATA")
    return HeaderParser().parsestr(_read_text(path))


def _wheel_headers(dist: InstalledDistribution) -> Message:
    return HeaderParser().parsestr(_read_text(dist.dist_info / "WHEEL"))


def _direct_url(dist: InstalledDistribution) -> dict[str, object] | None:
    text = _read_text(dist.dist_info / "direct_url.json")
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _editable_location(dist: InstalledDistribution) -> Path | None:
    """The project folder of an editable install (PEP 610 ``dir_info.editable``)."""
    if not dist.editable:
        return None
    data = _direct_url(dist) or {}
    url = data.get("url")
    if not isinstance(url, str):
        return None
    parts = urlsplit(url)
    if parts.scheme != "file":
        return None
    return Path(os.path.normpath(unquote(parts.path)))
