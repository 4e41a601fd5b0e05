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

from torrip.index.evaluate import SDIST_REJECTED, Evaluation, LinkEvaluator
from torrip.index.links import Link

__all__ = ["ProjectFiles", "version_in_filename"]


@functools.lru_cache(maxsize=65536)
def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _version_of(evaluation: Evaluation) -> tuple[bool, Version]:
    """A sort key: the evaluated file's version, files without one below every version."""
    version = evaluation.version or version_in_filename(evaluation.link.filename)
    return (version is not None, version or Version("0"))


def version_in_filename(filename: str) -> Version | None:
    """The version a wheel's or sdist's filename names; None if it names none."""
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

    def __init__(
        self,
        name: NormalizedName,
        links: Sequence[Link],
        evaluator: LinkEvaluator,
        skipped: Sequence[str] = (),
    ):
        self.name = name
        # Wheels the index client left out as being for other platforms (filenames).
        self._skipped = skipped
        self.evaluator = evaluator
        by_version: dict[Version, list[Link]] = {}
        self._unparsed: list[Link] = []
        for link in links:
            version = version_in_filename(link.filename)
            if version is None:
                self._unparsed.append(link)
            else:
                by_version.setdefault(version, []).append(link)
        self.versions = sorted(by_version, reverse=True)
        self._links = by_version
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
        # Lazy on purpose: the resolver usually takes the first candidate, and testing
        # hundreds of old versions against the specifier costs more than the rest.
        any_pre = bool(prereleases or specifier.prereleases)
        held_back: list[Version] = []  # pre-releases, used only if no final release fits
        yanked: list[tuple[Version, Link]] = []
        found = False
        for version in self.versions:
            if not specifier.contains(version, prereleases=True):
                continue
            if version.is_prerelease and not any_pre:
                held_back.append(version)
                continue
            link = self.best_link(version)
            if link is None:
                continue
            if link.yanked is not None:
                yanked.append((version, link))
                continue
            found = True
            yield version, link
        if not found:
            for version in held_back:
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
        skipped = [self.evaluator.evaluate(Link(name, url=""), self.name) for name in self._skipped]
        # Newest first, as the versions above: the examples an error shows are the newest
        # release's files (pywin32's Windows wheels of 311, not of 222 for Python 2.7).
        skipped.sort(key=_version_of, reverse=True)
        return evaluations + skipped

    def source_only(self, version: Version) -> str | None:
        """The filename of ``version``'s source distribution if that is all it offers the
        target (no wheel fits; the sdist is not yanked and fits Requires-Python), else None."""
        if self.best_link(version) is not None:
            return None
        for evaluation in self._evaluate_version(version):
            if (
                evaluation.is_sdist
                and evaluation.rejected == SDIST_REJECTED
                and evaluation.link.yanked is None
            ):
                return evaluation.link.filename
        return None

    def installable_versions(self) -> list[Version]:
        return [v for v in self.versions if self.best_link(v) is not None]
