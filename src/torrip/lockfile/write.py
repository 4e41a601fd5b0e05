"""Write a PEP 751 lockfile from a resolution: ``torrip lock``.

The lock is for the target environment it was resolved for (its markers and tags), and
says so in ``environments`` and ``requires-python``, so that installing it elsewhere fails
with a clear message instead of silently missing a dependency whose marker differs.
Each package names its index, and its wheel's URL, size, hashes, upload time (when the
index gives it) and torrents (``[packages.tool.torrip]``, see ``tooldata``).

    result = lock_requirements(InstallRequest(requirements=("jupyterlab",)), settings)
    Path("pylock.toml").write_text(result.text)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urldefrag

import tomli_w
from packaging.markers import Marker
from packaging.pylock import Package, PackageArchive, PackageWheel, Pylock, PylockValidationError
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from torrip import __version__
from torrip.cache import DistributionCache
from torrip.config import Settings
from torrip.credentials import without_credentials
from torrip.environment import TargetEnvironment
from torrip.errors import LockfileError
from torrip.index.early import EarlyIndex
from torrip.index.links import Link, TorrentRef, parse_upload_time
from torrip.lockfile.tooldata import tool_table
from torrip.planner import InstallRequest, PlannedInstall, plan_install
from torrip.resolver.resolve import ResolvedDistribution

__all__ = [
    "LockResult",
    "lock_from_plan",
    "lock_requirements",
    "render_lockfile",
    "render_requirements",
]

Log = Callable[[str], None]

# What a lock written for one target says about that target (PEP 508 marker variables).
_ENVIRONMENT_MARKERS = ("sys_platform", "platform_machine", "implementation_name", "python_version")


@dataclass(frozen=True)
class LockResult:
    lock: Pylock
    planned: PlannedInstall
    text: str  # the TOML document, with a header comment


@dataclass(frozen=True)
class _FileFacts:
    """What a lock needs of a file the index did not describe fully (hashed by fetching)."""

    sha256: str
    size: int


def lock_requirements(
    request: InstallRequest,
    settings: Settings,
    *,
    explicit: set[str] | None = None,
    log: Log = lambda _: None,
    early: EarlyIndex | None = None,
) -> LockResult:
    """Resolve ``request`` for its target as if nothing were installed, and lock the result
    (``early``: as for ``plan_install``)."""
    planned = plan_install(
        request._replace(ignore_installed=True), settings, explicit=explicit, log=log, early=early
    )
    facts = _hash_undescribed_files(planned, log)
    lock = lock_from_plan(planned, facts)
    return LockResult(lock, planned, render_lockfile(lock, planned.environment))


def lock_from_plan(
    planned: PlannedInstall, facts: Mapping[str, _FileFacts] | None = None
) -> Pylock:
    """The lock of ``planned.plan.install`` (every distribution of a resolution that ignored
    what is installed). ``facts`` gives sha256 and size of files whose index gave none."""
    environment = planned.environment
    packages = [
        _package(dist, planned.torrents, (facts or {}).get(_url(dist)))
        for dist in sorted(planned.plan.install, key=lambda d: d.candidate.name)
    ]
    major, minor, _ = environment.python_version
    lock = Pylock(
        lock_version=Version("1.0"),
        environments=[_environment_marker(environment)],
        requires_python=SpecifierSet(f"=={major}.{minor}.*"),
        created_by="torrip",
        packages=packages,
    )
    try:
        lock.validate()
    except PylockValidationError as error:  # torrip's own mistake, but say which package
        raise LockfileError("the new lockfile", f"it would not be valid: {error}") from None
    return lock


def render_lockfile(lock: Pylock, environment: TargetEnvironment) -> str:
    markers = environment.markers
    header = (
        f"# Written by torrip {__version__} (torrip lock) for {markers['implementation_name']} "
        f"{markers['python_full_version']} on {markers['sys_platform']} "
        f"{markers['platform_machine']}.\n"
        "# Install with: torrip install -r pylock.toml (or torrip sync, uv pip install -r, "
        "pip install -r)\n"
    )
    return header + tomli_w.dumps(_toml_ready(lock.to_dict()))


def render_requirements(lock: Pylock, environment: TargetEnvironment) -> str:
    """The lock as a requirements file in pip's hash-checking form (as ``pip-compile
    --generate-hashes`` and ``uv pip compile`` write them): each package pinned with ``==``
    (or ``name @ URL``) and the sha256 of the one file chosen for the target, so that
    ``pip install --require-hashes -r`` (or torrip's) installs exactly that."""
    markers = environment.markers
    lines = [
        f"# Written by torrip {__version__} (torrip lock) for {markers['implementation_name']} "
        f"{markers['python_full_version']} on {markers['sys_platform']} "
        f"{markers['platform_machine']}: each hash is that of the file chosen for this target.",
        "# Install with: torrip install -r requirements.txt (or pip install -r, uv pip install -r)",
    ]
    for package in lock.packages:
        if package.archive is not None:  # name @ URL
            pin, digests = f"{package.name} @ {package.archive.url}", [package.archive.hashes]
        else:
            pin = f"{package.name}=={package.version}"
            digests = [wheel.hashes for wheel in package.wheels or ()]
        hashes = [f"--hash=sha256:{d['sha256']}" for d in digests if "sha256" in d]
        lines.append(" \\\n    ".join([pin, *hashes]))
    return "\n".join(lines) + "\n"


def _toml_ready(value: Any) -> Any:
    """``Pylock.to_dict`` gives Sequences and Mappings; tomli-w wants lists and dicts."""
    if isinstance(value, Mapping):
        return {str(k): _toml_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_toml_ready(v) for v in value]
    return value


def _environment_marker(environment: TargetEnvironment) -> Marker:
    clauses = [f"{key} == {environment.markers[key]!r}" for key in _ENVIRONMENT_MARKERS]
    return Marker(" and ".join(clauses))


def _url(dist: ResolvedDistribution) -> str:
    link = dist.candidate.link
    assert link is not None, "a lock is made from a resolution that ignores installed dists"
    return without_credentials(urldefrag(link.url).url)  # never a secret in a lockfile


def _package(
    dist: ResolvedDistribution, torrents: Mapping[str, TorrentRef], facts: _FileFacts | None
) -> Package:
    link = dist.candidate.link
    assert link is not None
    url = _url(dist)
    hashes = {algorithm.lower(): digest.lower() for algorithm, digest in link.hashes.items()}
    size = link.size
    if facts is not None:
        hashes.setdefault("sha256", facts.sha256)
        size = size if size is not None else facts.size
    torrent = link.torrent or torrents.get(link.url)
    tool = tool_table({link.filename: torrent} if torrent is not None else {})
    if dist.candidate.source == "url":  # name @ URL: a direct reference, no index
        archive = PackageArchive(url=url, size=size, hashes=dict(sorted(hashes.items())))
        return Package(name=dist.candidate.name, archive=archive, tool=tool)
    wheel = PackageWheel(
        name=link.filename,
        upload_time=parse_upload_time(link.upload_time),
        url=url,
        size=size,
        hashes=dict(sorted(hashes.items())),
    )
    return Package(
        name=dist.candidate.name,
        version=dist.candidate.version,
        requires_python=dist.metadata.requires_python,
        index=_index_base(link, dist.candidate.name),
        wheels=[wheel],
        tool=tool,
    )


def _index_base(link: Link, name: str) -> str | None:
    """The Simple API base (``https://pypi.org/simple``) of the page the file was listed on;
    None for a --find-links location, which is no Simple API index."""
    page = link.index_url
    suffix = f"/{name}/"
    if not page or not page.endswith(suffix):
        return None
    return without_credentials(page[: -len(suffix)])


def _hash_undescribed_files(planned: PlannedInstall, log: Log) -> dict[str, _FileFacts]:
    """Fetch the files whose index gave no sha256 (--find-links folders, bare pages), to
    hash them: a lock without a hash for every file is not a lock."""
    missing = [
        d.candidate.link
        for d in planned.plan.install
        if d.candidate.link is not None and not d.candidate.link.sha256
    ]
    if not missing:
        return {}
    from torrip.http import make_client
    from torrip.transport.fetch import Fetcher, FileRequest

    settings = planned.settings
    cache = None if settings.no_cache else DistributionCache(settings.cache_dir)
    log(f"hashing {len(missing)} files the index gives no sha256 for")
    with make_client(settings) as http, Fetcher(settings, http, cache, log=log) as fetcher:
        results = fetcher.fetch_all([FileRequest.from_link(link) for link in missing])
        return {
            result.request.url: _FileFacts(result.sha256, result.path.stat().st_size)
            for result in results
        }
