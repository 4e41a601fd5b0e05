"""Which files of a project can be candidates, found lazily.

Big projects list thousands of files; the resolver nearly always takes the newest
version that fits. So files are grouped by the version in their name (cheap), and
only the files of a version the resolver actually reaches are evaluated for the
target's tags and Python.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from torrip.index.evaluate import Evaluation, LinkEvaluator
from torrip.index.links import Link

__all__ = ["ProjectFiles"]


@functools.lru_cache(maxsize=65536)
def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _version_in_filename(filename: str) -> Version | None:
    if filename.endswith(".whl"):
        parts = filename.split("-")
        return _version(parts[1]) if len(parts) in (5, 6) else None
    for suffix in (".tar.gz", ".zip"):
        if filename.endswith(suffix):
            _name, sep, version = filename[: -len(suffix)].rpartition("-")
            return _version(version) if sep else None
    return None


@functools.lru_cache(maxsize=65536)
def _build_tag(filename: str) -> tuple[Any, ...]:
    return tuple(parse_wheel_filename(filename)[2])


class ProjectFiles:
    """The files of one project, by version; evaluated on demand and memoized."""

    def __init__(self, name: NormalizedName, links: Sequence[Link], evaluator: LinkEvaluator):
        self.name = name
        self.evaluator = evaluator
        by_version: dict[Version, list[Link]] = {}
        for link in links:
            version = _version_in_filename(link.filename)
            if version is not None:
                by_version.setdefault(version, []).append(link)
        self.versions = sorted(by_version, reverse=True)
        self._links = by_version
        self._unparsed = [link for link in links if _version_in_filename(link.filename) is None]
        self._best: dict[Version, Link | None] = {}
        self._evaluations: dict[Version, list[Evaluation]] = {}
        self._lock = threading.Lock()

    def _evaluate_version(self, version: Version) -> list[Evaluation]:
        with self._lock:
            cached = self._evaluations.get(version)
        if cached is None:
            cached = [self.evaluator.evaluate(link, self.name) for link in self._links[version]]
            with self._lock:
                self._evaluations[version] = cached
        return cached

    def best_link(self, version: Version) -> Link | None:
        """The best wheel of ``version``: best tag for the target, then highest build tag."""
        with self._lock:
            if version in self._best:
                return self._best[version]
        best: tuple[tuple[int, tuple[Any, ...]], Link] | None = None
        for evaluation in self._evaluate_version(version):
            if not evaluation.ok or evaluation.version != version:
                continue
            assert evaluation.tag_rank is not None
            build = _build_tag(evaluation.link.filename)
            key = (evaluation.tag_rank, tuple(-x if isinstance(x, int) else 0 for x in build))
            if best is None or key < best[0]:
                best = (key, evaluation.link)
        link = best[1] if best else None
        with self._lock:
            self._best[version] = link
        return link

    def matching(
        self, specifier: SpecifierSet, *, prereleases: bool | None, allow_yanked: bool
    ) -> Iterator[tuple[Version, Link]]:
        """(version, best link) newest first, for versions the specifier admits.

        Yanked files come only if ``allow_yanked`` and no other version fits (PEP 592).
        """
        admitted = list(specifier.filter(self.versions, prereleases=True))
        if prereleases or specifier.prereleases:
            order = admitted
        else:
            # Pre-releases only when no final release has an installable file (like pip).
            finals = [v for v in admitted if not v.is_prerelease]
            order = finals + [v for v in admitted if v.is_prerelease]
        yanked: list[tuple[Version, Link]] = []
        found = False
        for version in order:
            if version.is_prerelease and found and not (prereleases or specifier.prereleases):
                break
            link = self.best_link(version)
            if link is None:
                continue
            if link.yanked is not None:
                yanked.append((version, link))
                continue
            found = True
            yield version, link
        if not found and allow_yanked:
            yield from yanked

    def all_evaluations(self) -> list[Evaluation]:
        """Every file judged, for error messages."""
        evaluations = [e for v in self.versions for e in self._evaluate_version(v)]
        evaluations += [self.evaluator.evaluate(link, self.name) for link in self._unparsed]
        return evaluations

    def installable_versions(self) -> list[Version]:
        return [v for v in self.versions if self.best_link(v) is not None]
