"""``torrip list --outdated``: the installed packages the index has a newer wheel of.

Newer means a version torrip would install into this target (a wheel that fits its tags
and Requires-Python, not yanked), as ``torrip install -U`` would pick it; pre-releases
only with ``pre`` or when the installed version is one, as pip does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from torrip.config import Settings, upload_cutoff
from torrip.environment import TargetEnvironment
from torrip.inventory import Package

__all__ = ["Newer", "newer_versions"]


@dataclass(frozen=True)
class Newer:
    package: Package
    latest: Version


def newer_versions(
    environment: TargetEnvironment,
    packages: Sequence[Package],
    settings: Settings,
    *,
    pre: bool = False,
    log: Callable[[str], None] = lambda _: None,
) -> list[Newer]:
    """The ``packages`` (installed in ``environment``) that have a newer version on the
    index, in their order; projects the index does not have are left out."""
    from torrip.http import make_client
    from torrip.index.client import IndexClient
    from torrip.index.evaluate import LinkEvaluator
    from torrip.resolver.finder import ProjectFiles

    evaluator = LinkEvaluator(
        environment.tag_priority(),
        environment.python_version,
        uploaded_before=upload_cutoff(settings.uploaded_prior_to),
    )
    newer = []
    with make_client(settings) as http, IndexClient(settings, http, log=log) as index:
        index.restrict_platforms(frozenset(tag.platform for tag in environment.tags))
        names = [canonicalize_name(package.name) for package in packages]
        pages = [index.prefetch_project(name) for name in names]  # all at once
        for package, name, page in zip(packages, names, pages, strict=True):
            try:
                installed = Version(package.normalized_version)
            except InvalidVersion:
                continue  # a legacy version: nothing on the index compares with it
            files = ProjectFiles(name, page.result(), evaluator, index.skipped_files(name))
            best = files.matching(
                SpecifierSet(), prereleases=pre or installed.is_prerelease, allow_yanked=False
            )
            latest = next((version for version, _ in best), None)
            if latest is not None and latest > installed:
                newer.append(Newer(package, latest))
    return newer
