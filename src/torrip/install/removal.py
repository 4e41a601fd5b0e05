"""What an uninstall would remove, for a person to confirm, listed the way pip lists it.

Planning reads every RECORD and refuses (UninstallError) a distribution without
one, or whose files lie outside the environment, before anything is asked or
moved. ``uninstall`` plans again under the environment lock when it runs.

Usage::

    plan = plan_uninstall(environment, ["demo", "not-installed"])
    plan.missing                                # ('not-installed',)
    listing = plan.removals[0].listing()
    listing.remove   # ('/venv/bin/demo-cli', '/venv/.../demo-1.0.dist-info/*', '/venv/.../demo/*')
    listing.keep     # files inside those folders that no RECORD lists: they stay
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

from torrip.environment import InstalledDistribution, TargetEnvironment
from torrip.install.uninstall import environment_roots, removal_paths

__all__ = ["Listing", "PlannedRemoval", "UninstallPlan", "listing_for", "plan_uninstall"]


@dataclass(frozen=True)
class Listing:
    remove: tuple[str, ...]
    """Files, and ``folder/*`` for package and .dist-info folders, sorted."""
    keep: tuple[str, ...]
    """Files in those folders that are not removed (added by hand, or by the package when run)."""


@dataclass(frozen=True)
class PlannedRemoval:
    distribution: InstalledDistribution
    paths: tuple[Path, ...]
    """Every file to remove: the RECORD's, their bytecode, all of the .dist-info."""

    def listing(self) -> Listing:
        return listing_for(self.paths)


@dataclass(frozen=True)
class UninstallPlan:
    removals: tuple[PlannedRemoval, ...]
    """In the order asked for, one per distribution."""
    missing: tuple[str, ...]
    """The names asked for that are not installed, as given."""


def plan_uninstall(environment: TargetEnvironment, names: Iterable[str]) -> UninstallPlan:
    """What removing ``names`` would remove; raises UninstallError if that is unsafe."""
    roots = environment_roots(environment)
    removals: list[PlannedRemoval] = []
    missing: list[str] = []
    seen: set[str] = set()
    for name in names:
        key = canonicalize_name(name)
        if key in seen:
            continue
        seen.add(key)
        dist = environment.installed.get(key)
        if dist is None:
            missing.append(name)
        else:
            removals.append(PlannedRemoval(dist, tuple(removal_paths(dist, roots))))
    return UninstallPlan(tuple(removals), tuple(missing))


def listing_for(paths: Iterable[Path]) -> Listing:
    """pip's "Would remove" listing: folders of packages and .dist-info shown as ``folder/*``.

    Bytecode is not listed. Files inside such a folder that are not in ``paths`` are
    listed apart, as staying.
    """
    files: set[str] = set()
    folders: set[str] = set()
    for path in map(str, paths):
        if path.endswith(".pyc"):
            continue
        if path.endswith("__init__.py") or ".dist-info" in path:
            folders.add(os.path.dirname(path))
        files.add(path)
    folders = _compact(folders)
    removed = {os.path.normcase(path) for path in files}
    keep: set[str] = set()
    for folder in folders:
        for directory, _dirs, names in os.walk(folder):
            for name in names:
                path = os.path.join(directory, name)
                if (
                    not name.endswith(".pyc")
                    and os.path.isfile(path)
                    and os.path.normcase(path) not in removed
                ):
                    keep.add(path)
    remove = files | {os.path.join(folder, "*") for folder in folders}
    return Listing(tuple(sorted(_compact(remove))), tuple(sorted(_compact(keep))))


def _compact(paths: Iterable[str]) -> set[str]:
    """The paths not inside another one of them (``folder/*`` counts as ``folder``)."""
    kept: set[str] = set()
    prefixes: set[str] = set()
    for path in sorted(paths, key=len):
        current = path[:-1] if path.endswith(os.sep + "*") else path
        parent = current.rstrip(os.sep)
        while parent:
            if parent in prefixes:
                break
            next_parent = os.path.dirname(parent).rstrip(os.sep)
            parent = "" if next_parent == parent else next_parent
        else:
            kept.add(path)
            prefixes.add(current.rstrip(os.sep))
    return kept
