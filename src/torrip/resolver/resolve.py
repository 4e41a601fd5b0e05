"""Run resolvelib with torrip's provider; turn its failures into messages like pip's."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from typing import TYPE_CHECKING, NamedTuple

from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version
from resolvelib import BaseReporter, ResolutionImpossible, ResolutionTooDeep, Resolver

from torrip.errors import NoMatchingDistributionError, ResolutionImpossibleError
from torrip.metadata import DistMetadata
from torrip.resolver.finder import version_in_filename
from torrip.resolver.models import (
    PYTHON_IDENTIFIER,
    AnyCandidate,
    AnyRequirement,
    Candidate,
    Requirement,
    RequiresPython,
)
from torrip.resolver.provider import Info, Provider

if TYPE_CHECKING:
    from resolvelib.resolvers import Criterion

__all__ = ["NewerSourceOnly", "Resolution", "ResolvedDistribution", "resolve"]

# resolvelib counts rounds; pip allows 200000. Enough for deep backtracking, bounded.
MAX_ROUNDS = 200_000


class ResolvedDistribution(NamedTuple):
    candidate: Candidate
    metadata: DistMetadata
    requested: bool
    requested_extras: frozenset[NormalizedName]


class NewerSourceOnly(NamedTuple):
    """A version newer than the one resolved, which every requirement admits, passed over
    because it has only a source distribution (pip would build it; torrip does not)."""

    name: NormalizedName
    version: Version
    filename: str
    resolved: Version


class Resolution(NamedTuple):
    distributions: tuple[ResolvedDistribution, ...]  # sorted by name
    newer_source_only: tuple[NewerSourceOnly, ...] = ()

    def by_name(self) -> dict[NormalizedName, ResolvedDistribution]:
        return {d.candidate.name: d for d in self.distributions}


class _PinReporter(BaseReporter):  # type: ignore[type-arg]
    def __init__(self, on_pinned: Callable[[AnyCandidate], None]) -> None:
        self.on_pinned = on_pinned

    def pinning(self, candidate: AnyCandidate) -> None:
        self.on_pinned(candidate)


def resolve(
    provider: Provider,
    requirements: Sequence[Requirement],
    *,
    on_pinned: Callable[[AnyCandidate], None] | None = None,
) -> Resolution:
    """Resolve ``requirements`` (the user's; constraints live in the provider's options).
    ``on_pinned(candidate)``: told of each candidate as it is pinned (backtracking may
    take it back)."""
    reporter = BaseReporter() if on_pinned is None else _PinReporter(on_pinned)
    resolver: Resolver[AnyRequirement, AnyCandidate, str] = Resolver(provider, reporter)
    for requirement in requirements:
        provider._speculate(requirement)
    try:
        result = resolver.resolve(requirements, max_rounds=MAX_ROUNDS)
    except ResolutionImpossible as error:
        raise explain_conflict(provider, error.causes) from None
    except ResolutionTooDeep:
        raise ResolutionImpossibleError(
            "resolution took too long: too many versions had to be tried",
            ["more than 200000 rounds of backtracking"],
        ) from None
    finally:
        provider.done = True
    requested = {r.name for r in requirements}
    extras: dict[str, set[NormalizedName]] = {}
    for r in requirements:
        extras.setdefault(r.name, set()).update(r.extras)
    distributions = []
    for identifier, candidate in result.mapping.items():
        if identifier == PYTHON_IDENTIFIER or not isinstance(candidate, Candidate):
            continue
        if candidate.extras:
            continue  # its base is in the mapping too
        distributions.append(
            ResolvedDistribution(
                candidate=candidate,
                metadata=provider.metadata(candidate),
                requested=candidate.name in requested,
                requested_extras=frozenset(extras.get(candidate.name, ())),
            )
        )
    distributions.sort(key=lambda d: d.candidate.name)
    specifiers = _final_specifiers(result.criteria.values())
    passed_over = [
        found
        for d in distributions
        if (found := _newer_source_only(provider, d.candidate, specifiers)) is not None
    ]
    return Resolution(tuple(distributions), tuple(passed_over))


def _final_specifiers(
    criteria: Iterable[Criterion[AnyRequirement, AnyCandidate]],
) -> dict[NormalizedName, SpecifierSet]:
    """Each project's requirements at the end of resolution, extras' identifiers included
    (Requires-Python is no ``Requirement``)."""
    specifiers: dict[NormalizedName, SpecifierSet] = {}
    for criterion in criteria:
        for requirement in criterion.iter_requirement():
            if isinstance(requirement, Requirement):
                name = requirement.name
                specifiers[name] = specifiers.get(name, SpecifierSet()) & requirement.specifier
    return specifiers


def _newer_source_only(
    provider: Provider, candidate: Candidate, specifiers: dict[NormalizedName, SpecifierSet]
) -> NewerSourceOnly | None:
    """The newest version above ``candidate``'s that its requirements admit but only an
    sdist offers; None when there is none, or when the candidate was not chosen from an
    index (installed, a URL) or by hashes."""
    name = candidate.name
    if candidate.source != "index" or name in provider.options.hashes:
        return None
    specifier = specifiers.get(name, SpecifierSet())
    constraint = provider.options.constraints.get(name)
    if constraint is not None:
        specifier &= constraint
    pre = provider.options.pre or bool(specifier.prereleases)
    files = provider.files(name)
    for version in files.versions:  # newest first
        if version <= candidate.version:
            break
        if (version.is_prerelease and not pre) or not specifier.contains(version, prereleases=True):
            continue
        filename = files.source_only(version)
        if filename is not None:
            return NewerSourceOnly(name, version, filename, candidate.version)
    return None


def _describe_cause(requirement: AnyRequirement, parent: AnyCandidate | None) -> str:
    if isinstance(requirement, RequiresPython):
        owner = f"{parent}" if parent is not None else "The user"
        if str(requirement.specifier) == "<0":
            return f"{owner} has metadata torrip could not read"
        return f"{owner} depends on Python{requirement.specifier}"
    if parent is None:
        return f"The user requested {requirement}"
    return f"{parent.name} {parent.version} depends on {requirement}"


def explain_conflict(
    provider: Provider, causes: Collection[Info]
) -> ResolutionImpossibleError | NoMatchingDistributionError:
    infos = list(causes)
    identifiers = {info.requirement.identifier for info in infos}
    # One project and nothing else in play: say why no file of it fits.
    if len(identifiers) == 1 and all(info.parent is None for info in infos):
        requirement = infos[0].requirement
        if isinstance(requirement, Requirement):
            return no_matching_distribution(provider, requirement)
    lines: list[str] = []
    for info in infos:
        line = _describe_cause(info.requirement, info.parent)
        if line not in lines:
            lines.append(line)
    message = "cannot install the requested packages because their requirements conflict.\n\n"
    message += "The conflict is caused by:\n" + "".join(f"    {line}\n" for line in lines)
    for identifier in sorted(identifiers - {PYTHON_IDENTIFIER}):
        name = canonicalize_name(identifier.split("[", 1)[0])
        if not provider.files(name).installable_versions():
            reasons = _rejections(provider, name)
            if reasons:
                message += f"\nNo installable file of {name}:\n" + "".join(
                    f"    {r}\n" for r in reasons
                )
    return ResolutionImpossibleError(message.rstrip(), lines)


def _rejections(
    provider: Provider, name: NormalizedName, within: SpecifierSet | None = None
) -> list[str]:
    """Why files were refused, one file per reason; with a non-empty ``within``, only files
    of versions it admits (the others are not why a requirement found nothing)."""
    seen: dict[str, str] = {}
    for evaluation in provider.files(name).all_evaluations():
        if evaluation.rejected is None:
            continue
        if within:
            version = evaluation.version or version_in_filename(evaluation.link.filename)
            if version is None or not within.contains(version, prereleases=True):
                continue
        seen.setdefault(evaluation.rejected, evaluation.link.filename)
    return [f"{filename}: {reason}" for reason, filename in list(seen.items())[:8]]


def no_matching_distribution(
    provider: Provider, requirement: Requirement
) -> NoMatchingDistributionError:
    rejected = [e for e in provider.files(requirement.name).all_evaluations() if not e.ok]
    sdists = [
        e
        for e in rejected
        if e.is_sdist
        and e.version is not None
        and requirement.specifier.contains(e.version, prereleases=True)
        and e.rejected
        and "source distribution" in e.rejected
    ]
    if sdists:
        newest = max(sdists, key=lambda e: e.version or Version("0"))
        return NoMatchingDistributionError(
            str(requirement),
            [
                f"{requirement.name} {newest.version} has only a source distribution: "
                f"{newest.link.filename}"
            ],
            hint="Building from source is not supported yet. Pick a version that has a wheel "
            "for the target, or build the wheel yourself (`pip wheel`) and use --find-links.",
        )
    files = provider.files(requirement.name)
    reasons = _rejections(provider, requirement.name, within=requirement.specifier)
    allowed = provider.options.hashes.get(requirement.name)
    hashed_versions = files.versions if allowed is not None else []
    if (
        allowed is not None
        and provider.index.project_links(requirement.name)
        and not any(requirement.specifier.contains(v, prereleases=True) for v in hashed_versions)
    ):
        return NoMatchingDistributionError(
            str(requirement),
            [f"no file of {requirement.name} has one of the {len(allowed)} hashes given"],
            hint="Check the --hash values of this requirement against the files the index "
            "lists; the index may have replaced the file.",
        )
    if not reasons and not provider.index.project_links(requirement.name):
        reasons = ["the index has no project of that name"]
    elif not reasons:
        versions = files.installable_versions()
        shown = ", ".join(str(v) for v in versions[:10]) or "none"
        reasons = [f"versions available for the target: {shown}"]
        if not provider.options.pre and any(v.is_prerelease for v in versions):
            reasons.append("pre-releases are skipped unless --pre is given")
    return NoMatchingDistributionError(
        str(requirement),
        reasons,
        hint="Check the name and version range, and that a wheel exists for the target "
        "interpreter and platform.",
    )
