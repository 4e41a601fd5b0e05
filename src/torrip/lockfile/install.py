"""A Plan from a lockfile: what ``torrip install -r pylock.toml`` and ``torrip sync`` execute.

No index is asked anything: the lock's selection for the target is the resolution, each
file is fetched by its locked URL (and by swarm where the lock names a torrent), and the
lock's hashes are the only ones a file may have (``PlannedInstall.allowed_hashes``).
``sync`` also removes what the lock does not list, except torrip itself and what it needs.

    planned = plan_lock_install(LockInstallRequest(Path("pylock.toml"), python=".venv"), settings)
    execute_plan(planned)                      # the same fetch and transaction as any install
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name

from torrip.config import Settings
from torrip.environment import (
    InstalledDistribution,
    Probe,
    TargetEnvironment,
    find_target_python,
    inspect_environment,
    refuse_externally_managed,
)
from torrip.index.links import Link, TorrentRef
from torrip.install.plan import Plan
from torrip.lockfile.read import LockedFile, load_lockfile, select_files
from torrip.metadata import DistMetadata
from torrip.planner import PlannedInstall
from torrip.resolver.models import Candidate
from torrip.resolver.resolve import Resolution, ResolvedDistribution

__all__ = ["LockInstallRequest", "plan_lock_install", "protected_names"]

Log = Callable[[str], None]

# What sync never removes: the installer running the sync, if it lives in the target.
_SELF = canonicalize_name("torrip")


@dataclass(frozen=True)
class LockInstallRequest:
    lockfile: Path
    extras: frozenset[str] = frozenset()  # as in ``-r 'pylock.toml[extra]'``, or --extra
    all_extras: bool = False  # every extra the lock lists
    python: str | None = None
    reinstall: bool = False
    sync: bool = False  # also remove what the lock does not list
    refuse_externally_managed: bool = False  # as InstallRequest's


def plan_lock_install(
    request: LockInstallRequest,
    settings: Settings,
    *,
    log: Log = lambda _: None,
    warn: Log = lambda _: None,
    probe: Probe | None = None,
) -> PlannedInstall:
    """``log`` says what was chosen (-v); ``warn`` what the user should know; ``probe``:
    of the target, if the caller started it already."""
    started = time.perf_counter()
    lock = load_lockfile(request.lockfile, warn=warn, cache_dir=settings.kept_cache_dir)
    if probe is None:
        environment = inspect_environment(
            find_target_python(request.python), cache_dir=settings.kept_cache_dir
        )
    else:
        environment = probe.environment()
    if request.refuse_externally_managed:
        refuse_externally_managed(environment, settings)
    probed = time.perf_counter()
    extras = frozenset(lock.extras or ()) if request.all_extras else request.extras
    files = select_files(lock, request.lockfile, environment, extras=extras, log=log)
    log(f"{request.lockfile}: {len(files)} of {len(lock.packages)} packages fit the target")
    distributions = tuple(sorted((_locked_distribution(f) for f in files), key=_name_of))
    resolution = Resolution(distributions)
    plan = _plan(resolution, environment, reinstall=request.reinstall, sync=request.sync)
    torrents = _torrent_index_lookup(plan, settings, log)
    selected = time.perf_counter()
    return PlannedInstall(
        environment=environment,
        resolution=resolution,
        plan=plan,
        settings=settings,
        seconds={"inspect": probed - started, "resolve": selected - probed},
        torrents=torrents,
        allowed_hashes={f.name: f.allowed_hashes for f in files},
    )


def _name_of(dist: ResolvedDistribution) -> str:
    return dist.candidate.name


def _locked_distribution(locked: LockedFile) -> ResolvedDistribution:
    link = Link(
        filename=locked.filename,
        url=locked.url,
        hashes=dict(locked.hashes),
        requires_python=locked.requires_python,
        size=locked.size,
        upload_time=locked.upload_time,
        index_url=locked.index,
        torrent=locked.torrent,
    )
    candidate = Candidate(
        locked.name, locked.version, link=link, source="url" if locked.direct else "lock"
    )
    # The lock pins name and version; the wheel's METADATA is checked against them after
    # the fetch (install.execute), and its dependencies were resolved when it was written.
    raw = f"Metadata-Version: 2.1\nName: {locked.name}\nVersion: {locked.version}\n"
    metadata = DistMetadata(
        name=locked.name,
        display_name=locked.name,
        version=locked.version,
        requires_dist=(),
        requires_python=None,
        provides_extra=frozenset(),
        raw=raw.encode(),
    )
    # Every package of a lock is asked for by the user, as pip records it.
    return ResolvedDistribution(candidate, metadata, requested=True, requested_extras=frozenset())


def _plan(
    resolution: Resolution, environment: TargetEnvironment, *, reinstall: bool, sync: bool
) -> Plan:
    install, remove, kept = [], [], []
    for dist in resolution.distributions:
        present = environment.installed.get(dist.candidate.name)
        same = present is not None and present.version == dist.candidate.version
        if same and not reinstall:
            kept.append(dist)
            continue
        install.append(dist)
        if present is not None:
            remove.append(present)
    if sync:
        listed = {dist.candidate.name for dist in resolution.distributions}
        keep = protected_names(environment)
        remove += [
            dist
            for dist in _inside(environment, environment.installed.values())
            if dist.name not in listed and dist.name not in keep
        ]
    return Plan(tuple(install), tuple(remove), tuple(kept))


def _inside(
    environment: TargetEnvironment, dists: Iterable[InstalledDistribution]
) -> list[InstalledDistribution]:
    """Distributions in the target's own site-packages (not a system or user site)."""
    roots = {os.path.realpath(environment.scheme[key]) for key in ("purelib", "platlib")}
    return sorted((d for d in dists if os.path.realpath(d.location) in roots), key=lambda d: d.name)


def protected_names(environment: TargetEnvironment) -> frozenset[NormalizedName]:
    """torrip and everything it needs, when torrip is installed in the target.

    ``uv pip sync`` likewise never removes uv; unlike uv, torrip is a Python program with
    dependencies, and removing them would break the installer mid-way. pip, setuptools and
    wheel get no such care (as in uv): a lock that should keep them must list them.
    """
    if _SELF not in environment.installed:
        return frozenset()
    markers = environment.marker_environment("")
    found: set[NormalizedName] = set()
    pending = [_SELF]
    while pending:
        name = pending.pop()
        dist = environment.installed.get(name)
        if name in found or dist is None:
            continue
        found.add(name)
        for text in dist.requires_dist:
            try:
                requirement = Requirement(text)
            except InvalidRequirement:
                continue
            if requirement.marker is None or requirement.marker.evaluate(markers):
                pending.append(canonicalize_name(requirement.name))
    return frozenset(found)


def _torrent_index_lookup(plan: Plan, settings: Settings, log: Log) -> dict[str, TorrentRef]:
    """Torrents from configured torrent indexes for locked wheels whose lock names none."""
    links = [d.candidate.link for d in plan.install if d.candidate.link is not None]
    if not settings.torrent_index or all(link.torrent for link in links):
        return {}
    from torrip.http import make_client
    from torrip.index.torrents import lookup_torrents

    with make_client(settings) as http:
        return lookup_torrents(http, links, settings.torrent_index, log=log)
