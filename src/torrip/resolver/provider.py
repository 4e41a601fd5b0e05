"""The resolvelib provider. resolvelib calls these methods by keyword: names are the contract."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from packaging.markers import Marker
from packaging.requirements import Requirement as PEP508Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version
from resolvelib import AbstractProvider
from resolvelib.structs import RequirementInformation

from torrip.environment import TargetEnvironment
from torrip.errors import MetadataError, TorripError
from torrip.hashcheck import may_match
from torrip.index.client import IndexClient
from torrip.index.evaluate import LinkEvaluator
from torrip.index.links import Link
from torrip.metadata import DistMetadata, parse_metadata
from torrip.requirements import vcs_error
from torrip.resolver.finder import ProjectFiles
from torrip.resolver.models import (
    PYTHON_IDENTIFIER,
    AnyCandidate,
    AnyRequirement,
    Candidate,
    PythonCandidate,
    Requirement,
    RequiresPython,
)

__all__ = ["Provider", "ProviderOptions", "requirement_from_pep508"]

Info = RequirementInformation[AnyRequirement, AnyCandidate]


@dataclass(frozen=True)
class ProviderOptions:
    pre: bool = False
    no_deps: bool = False
    # Projects whose installed version does not win by default (-U applies to requested ones).
    upgrade: frozenset[NormalizedName] = frozenset()
    # -U --upgrade-strategy eager: no installed version wins by default, dependencies' too.
    upgrade_all: bool = False
    constraints: Mapping[NormalizedName, SpecifierSet] = field(default_factory=dict)
    # Order in which the user named projects; earlier resolves first, like pip.
    requested_order: Mapping[NormalizedName, int] = field(default_factory=dict)
    # Hash-checking mode: a project's files must be able to match one of these (hashcheck).
    hashes: Mapping[NormalizedName, frozenset[str]] = field(default_factory=dict)
    # Only files uploaded before this moment (``uploaded-prior-to``).
    uploaded_before: datetime | None = None


def requirement_from_pep508(req: PEP508Requirement, parent: Candidate | None = None) -> Requirement:
    return Requirement(
        name=canonicalize_name(req.name),
        specifier=req.specifier,
        extras=frozenset(canonicalize_name(e) for e in req.extras),
        url=req.url,
        text=str(req),
        parent=parent,
    )


def _traits(requirement: AnyRequirement) -> tuple[bool, bool, bool, bool]:
    """Whether ``requirement`` is a direct URL, pins a version, bounds it from above, and
    constrains it at all: what the preference of its name reads (kept on a Requirement)."""
    if isinstance(requirement, Requirement) and requirement.traits:
        return requirement.traits[0]
    specifier = requirement.specifier
    found = (
        isinstance(requirement, Requirement) and bool(requirement.url),
        _is_pinned(specifier),
        any(spec.operator in ("<", "<=", "~=", "==") for spec in specifier),
        len(specifier) > 0,
    )
    if isinstance(requirement, Requirement):
        requirement.traits.append(found)
    return found


def _is_pinned(specifier: SpecifierSet) -> bool:
    for spec in specifier:
        if spec.operator == "===":
            return True
        if spec.operator == "==" and not spec.version.endswith(".*"):
            return True
    return False


class Provider(AbstractProvider[AnyRequirement, AnyCandidate, str]):
    def __init__(
        self,
        index: IndexClient,
        environment: TargetEnvironment,
        options: ProviderOptions,
        *,
        on_likely: Callable[[Candidate], None] | None = None,
    ) -> None:
        """``on_likely(candidate)``: told, from the index client's threads, of the best
        candidate for a requirement once its metadata is read (speculation, below): the
        one the resolver will most likely pin."""
        self.index = index
        self.environment = environment
        self.options = options
        self.on_likely = on_likely
        self.evaluator = LinkEvaluator(
            environment.tag_priority(),
            environment.python_version,
            uploaded_before=options.uploaded_before,
        )
        index.restrict_platforms(frozenset(tag.platform for tag in environment.tags))
        # From the version tuple: python_full_version may be "3.13.0+" on a source build.
        self.python = PythonCandidate(Version(".".join(map(str, environment.python_version))))
        self._files: dict[NormalizedName, ProjectFiles] = {}
        self._building: dict[NormalizedName, threading.Lock] = {}
        self._metadata: dict[str, DistMetadata | MetadataError] = {}
        self._lock = threading.Lock()
        self._speculated: set[tuple[str, frozenset[NormalizedName]]] = set()
        self._order: dict[str, int] = {}  # identifier -> its place among the user's names
        self.done = False

    # resolvelib contract -------------------------------------------------------------

    def identify(self, requirement_or_candidate: AnyRequirement | AnyCandidate) -> str:
        return requirement_or_candidate.identifier

    def narrow_requirement_selection(
        self,
        identifiers: Iterable[str],
        resolutions: Mapping[str, AnyCandidate],
        candidates: Mapping[str, Iterator[AnyCandidate]],
        information: Mapping[str, Iterator[Info]],
        backtrack_causes: Sequence[Info],
    ) -> Iterable[str]:
        identifiers = list(identifiers)
        if PYTHON_IDENTIFIER in identifiers:
            return [PYTHON_IDENTIFIER]  # cheap, and fails fast
        if backtrack_causes:
            causes = {cause.requirement.identifier for cause in backtrack_causes}
            causes |= {c.parent.identifier for c in backtrack_causes if c.parent is not None}
            narrowed = [i for i in identifiers if i in causes]
            if narrowed:
                return narrowed
        return identifiers

    def get_preference(
        self,
        identifier: str,
        resolutions: Mapping[str, AnyCandidate],
        candidates: Mapping[str, Iterator[AnyCandidate]],
        information: Mapping[str, Iterator[Info]],
        backtrack_causes: Sequence[Info],
    ) -> Any:
        direct = pinned = upper_bounded = unfree = False
        for info in information[identifier]:
            a, b, c, d = _traits(info.requirement)
            direct, pinned, upper_bounded, unfree = (
                direct or a,
                pinned or b,
                upper_bounded or c,
                unfree or d,
            )
        order = self._order.get(identifier)
        if order is None:
            name = canonicalize_name(identifier.split("[", 1)[0])
            order = self._order[identifier] = self.options.requested_order.get(
                name, len(self.options.requested_order)
            )
        return (not direct, not pinned, not upper_bounded, order, not unfree, identifier)

    def find_matches(
        self,
        identifier: str,
        requirements: Mapping[str, Iterator[AnyRequirement]],
        incompatibilities: Mapping[str, Iterator[AnyCandidate]],
    ) -> Iterable[AnyCandidate] | Callable[[], Iterator[AnyCandidate]]:
        reqs = list(requirements[identifier])
        if identifier == PYTHON_IDENTIFIER:
            ok = all(self.python.version in r.specifier for r in reqs)
            return [self.python] if ok else []
        project_reqs = [r for r in reqs if isinstance(r, Requirement)]
        name = canonicalize_name(identifier.split("[", 1)[0])
        extras = frozenset(e for r in project_reqs for e in r.extras)
        bad = {c for c in incompatibilities[identifier] if isinstance(c, Candidate)}
        exact = [r.exact for r in project_reqs if r.exact is not None]
        if exact:
            return [c for c in exact[:1] if c not in bad and self._satisfies_all(project_reqs, c)]

        def matches() -> Iterator[AnyCandidate]:
            first = True
            for candidate in self._candidates(name, project_reqs):
                if extras:
                    candidate = Candidate(
                        candidate.name,
                        candidate.version,
                        extras,
                        candidate.link,
                        candidate.installed,
                        candidate.source,
                    )
                if candidate in bad:
                    continue
                if first and candidate.link is not None:
                    self.index.prefetch_metadata(candidate.link)
                first = False
                yield candidate

        return matches

    def is_satisfied_by(self, requirement: AnyRequirement, candidate: AnyCandidate) -> bool:
        if isinstance(requirement, RequiresPython):
            return candidate.version in requirement.specifier
        assert isinstance(candidate, Candidate)
        if requirement.exact is None and not requirement.url:
            # The common case, called tens of thousands of times by resolvelib (every pin,
            # every round): a requirement's specifier is matched against a version once.
            version = candidate.version
            matches = requirement.satisfied.get(version)
            if matches is None:
                specifier = requirement.specifier
                matches = not specifier or specifier.contains(version, prereleases=True)
                requirement.satisfied[version] = matches
            if not matches:
                return False
            constraint = self.options.constraints.get(candidate.name)
            return constraint is None or constraint.contains(version, prereleases=True)
        return self._satisfies_all([requirement], candidate)

    def get_dependencies(self, candidate: AnyCandidate) -> list[AnyRequirement]:
        if isinstance(candidate, PythonCandidate):
            return []
        if self.options.no_deps:
            if candidate.extras:
                return [self._base_requirement(candidate)]
            return []
        metadata = self._metadata_for(candidate)
        if isinstance(metadata, MetadataError):
            # A candidate with broken metadata cannot be chosen: depend on something
            # impossible so resolvelib backtracks to another version (pdm does the same).
            return [RequiresPython(SpecifierSet("<0"), parent=candidate)]
        deps: list[AnyRequirement] = []
        if candidate.extras:
            deps.append(self._base_requirement(candidate))
        elif metadata.requires_python is not None and candidate.source != "installed":
            deps.append(RequiresPython(metadata.requires_python, parent=candidate))
        for req in self._requirements_of(metadata, candidate.extras):
            deps.append(requirement_from_pep508(req, parent=candidate))
        for dep in deps:
            if isinstance(dep, Requirement):
                self._speculate(dep)
        return deps

    # candidates ----------------------------------------------------------------------

    def files(self, name: NormalizedName) -> ProjectFiles:
        """The project's files, built once even when threads ask at the same moment."""
        with self._lock:
            files = self._files.get(name)
            if files is not None:
                return files
            building = self._building.setdefault(name, threading.Lock())
        with building:
            with self._lock:
                files = self._files.get(name)
            if files is None:
                links = self.index.project_links(name)
                allowed = self.options.hashes.get(name)
                if allowed is not None:  # hash-checking mode: other files are no candidates
                    links = [link for link in links if may_match(link, allowed)]
                files = ProjectFiles(name, links, self.evaluator, self.index.skipped_files(name))
                with self._lock:
                    self._files[name] = files
        return files

    def _candidates(self, name: NormalizedName, reqs: Sequence[Requirement]) -> Iterator[Candidate]:
        """Candidates in preference order, produced lazily (most resolutions take the first)."""
        urls = {r.url for r in reqs if r.url}
        if urls:
            yield from self._url_candidates(name, urls)
            return
        specifier = SpecifierSet()
        for req in reqs:
            specifier &= req.specifier
        constraint = self.options.constraints.get(name)
        if constraint is not None:
            specifier &= constraint
        found = self.files(name).matching(
            specifier,
            prereleases=True if self.options.pre else None,
            allow_yanked=_is_pinned(specifier),
        )
        installed = self.environment.installed.get(name)
        if installed is None or not specifier.contains(installed.version, prereleases=True):
            for version, link in found:
                yield Candidate(name, version, link=link)
            return
        current = Candidate(name, installed.version, installed=installed, source="installed")
        if not self._upgrading(name):
            yield current
            for version, link in found:
                if version != installed.version:
                    yield Candidate(name, version, link=link)
            return
        # Upgrading: the installed version keeps its place by version, and wins a tie.
        pending = True
        for version, link in found:
            if pending and version <= installed.version:
                pending = False
                yield current
            if version != installed.version:
                yield Candidate(name, version, link=link)
        if pending:
            yield current

    def _url_candidates(self, name: NormalizedName, urls: set[str]) -> list[Candidate]:
        if len(urls) > 1:
            raise TorripError(
                f"conflicting URLs requested for {name}: " + ", ".join(sorted(urls)),
                hint="Ask for one URL per project.",
            )
        (url,) = urls
        vcs = vcs_error(url)
        if vcs is not None:
            raise vcs
        from urllib.parse import unquote, urldefrag

        clean, fragment = urldefrag(url)
        filename = unquote(clean.rsplit("/", 1)[-1])
        algorithm, _, digest = fragment.partition("=")
        hashes = {algorithm: digest} if digest else {}
        link = Link(filename=filename, url=clean, hashes=hashes)
        evaluation = self.evaluator.evaluate(link, name)
        if not evaluation.ok or evaluation.version is None:
            raise TorripError(
                f"cannot install {name} from {url}: {evaluation.rejected}",
                hint="Point the URL at a wheel built for the target interpreter.",
            )
        return [Candidate(name, evaluation.version, link=link, source="url")]

    def _satisfies_all(self, reqs: Iterable[AnyRequirement], candidate: Candidate) -> bool:
        for req in reqs:
            if isinstance(req, RequiresPython):
                continue
            if req.exact is not None:
                if (req.exact.version, req.exact.source) != (candidate.version, candidate.source):
                    return False
                continue
            if req.url:
                if candidate.link is None or candidate.link.url != req.url.split("#", 1)[0]:
                    return False
                continue
            if not req.specifier.contains(candidate.version, prereleases=True):
                return False
        constraint = self.options.constraints.get(candidate.name)
        return constraint is None or constraint.contains(candidate.version, prereleases=True)

    def _base_requirement(self, candidate: Candidate) -> Requirement:
        base = candidate.base()
        return Requirement(
            name=candidate.name,
            specifier=SpecifierSet(f"=={candidate.version}"),
            text=f"{candidate.name}=={candidate.version}",
            parent=candidate,
            exact=base,
        )

    # metadata ------------------------------------------------------------------------

    def metadata(self, candidate: Candidate) -> DistMetadata:
        result = self._metadata_for(candidate)
        if isinstance(result, MetadataError):
            raise result
        return result

    def _metadata_for(self, candidate: Candidate) -> DistMetadata | MetadataError:
        if candidate.installed is not None:
            key = f"installed:{candidate.installed.dist_info}"
        else:
            assert candidate.link is not None
            key = candidate.link.url
        with self._lock:
            cached = self._metadata.get(key)
        if cached is not None:
            return cached
        result: DistMetadata | MetadataError
        try:
            if candidate.installed is not None:
                result = _installed_metadata(candidate)
            else:
                assert candidate.link is not None
                data = self.index.metadata(candidate.link)
                result = parse_metadata(data, candidate.link.filename)
                if (result.name, result.version) != (candidate.name, candidate.version):
                    raise MetadataError(
                        f"metadata of {candidate.link.filename} says {result.name} "
                        f"{result.version}, not {candidate.name} {candidate.version}"
                    )
        except MetadataError as error:
            result = error
        with self._lock:
            self._metadata[key] = result
        return result

    def _requirements_of(
        self, metadata: DistMetadata, extras: frozenset[NormalizedName]
    ) -> list[PEP508Requirement]:
        environment = self.environment
        selected = []
        for req in metadata.requires_dist:
            if req.marker is None:
                if not extras:
                    selected.append(req)
                continue
            if extras:
                # Only what the extras add; the base candidate brings the rest.
                if _marker_true(req.marker, environment, extras) and not _marker_true(
                    req.marker, environment, frozenset()
                ):
                    selected.append(req)
            elif _marker_true(req.marker, environment, frozenset()):
                selected.append(req)
        return selected

    def _upgrading(self, name: NormalizedName) -> bool:
        return self.options.upgrade_all or name in self.options.upgrade

    # speculative prefetch ------------------------------------------------------------

    def _speculate(self, requirement: Requirement) -> None:
        """Fetch the page and the likely metadata of a dependency, and of its dependencies,
        before the resolver asks: resolution becomes a walk over finished futures."""
        if self.done or requirement.url:
            return
        installed = self.environment.installed.get(requirement.name)
        if (
            installed is not None
            and not self._upgrading(requirement.name)
            and requirement.specifier.contains(installed.version, prereleases=True)
        ):
            return
        future = self.index.prefetch_project(requirement.name)
        future.add_done_callback(lambda f: self._speculate_page(f, requirement))

    def _speculate_page(self, future: Future[list[Link]], requirement: Requirement) -> None:
        if self.done or _failed(future):
            return
        try:
            candidate = next(
                (c for c in self._candidates(requirement.name, [requirement]) if c.link), None
            )
        except TorripError:
            return
        if candidate is None or candidate.link is None:
            return
        link = candidate.link
        key = (link.url, requirement.extras)  # the same file with other extras needs more
        with self._lock:
            if key in self._speculated:
                return
            self._speculated.add(key)
        metadata_future = self.index.prefetch_metadata(link)
        metadata_future.add_done_callback(
            lambda f: self._speculate_metadata(f, candidate, requirement.extras)
        )

    def _speculate_metadata(
        self, future: Future[bytes], candidate: Candidate, extras: frozenset[NormalizedName]
    ) -> None:
        if self.done or _failed(future):
            return
        metadata = self._metadata_for(candidate)  # parsed once, shared with the resolver
        if isinstance(metadata, MetadataError):
            return
        if self.on_likely is not None:
            self.on_likely(candidate)
        for req in self._requirements_of(metadata, frozenset()) + (
            self._requirements_of(metadata, extras) if extras else []
        ):
            if not req.url:
                self._speculate(requirement_from_pep508(req))


def _failed(future: Future[Any]) -> bool:
    """Raised or cancelled (the index client closed): nothing to speculate on."""
    return future.cancelled() or future.exception() is not None


def _marker_true(
    marker: Marker, environment: TargetEnvironment, extras: frozenset[NormalizedName]
) -> bool:
    if not extras:
        return marker.evaluate(environment.marker_environment(""))
    return any(marker.evaluate(environment.marker_environment(extra)) for extra in extras)


def _installed_metadata(candidate: Candidate) -> DistMetadata:
    installed = candidate.installed
    assert installed is not None
    path = installed.dist_info / (
        "METADATA" if installed.dist_info.suffix == ".dist-info" else "PKG-INFO"
    )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MetadataError(f"cannot read metadata of installed {installed.name}: {exc}") from None
    return parse_metadata(data, str(path))
