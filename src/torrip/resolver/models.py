"""What the resolver works with: requirements (RT), candidates (CT), identifiers (KT).

An identifier is a project name, ``name[extra,...]`` for a project with extras
(the extras candidate depends on the plain one at the same version, so both
resolve together), or ``<python>`` for Requires-Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName
from packaging.version import Version

from torrip.environment import InstalledDistribution
from torrip.index.links import Link

__all__ = [
    "PYTHON_IDENTIFIER",
    "Candidate",
    "PythonCandidate",
    "Requirement",
    "RequiresPython",
    "identifier_for",
]

PYTHON_IDENTIFIER = "<python>"


def identifier_for(name: NormalizedName, extras: frozenset[NormalizedName]) -> str:
    return f"{name}[{','.join(sorted(extras))}]" if extras else name


@dataclass(frozen=True)
class Candidate:
    """One version of a project: a wheel on an index, or what is installed already."""

    name: NormalizedName
    version: Version
    extras: frozenset[NormalizedName] = frozenset()
    link: Link | None = field(default=None, compare=False)
    installed: InstalledDistribution | None = field(default=None, compare=False)
    # Distinguishes an installed dist from the index file of the same version.
    source: str = "index"  # "index" | "installed" | "url"

    @property
    def identifier(self) -> str:
        return identifier_for(self.name, self.extras)

    def base(self) -> Candidate:
        return Candidate(
            self.name, self.version, frozenset(), self.link, self.installed, self.source
        )

    def __str__(self) -> str:
        extras = f"[{','.join(sorted(self.extras))}]" if self.extras else ""
        return f"{self.name}{extras} {self.version}"


@dataclass(frozen=True)
class PythonCandidate:
    version: Version

    identifier = PYTHON_IDENTIFIER
    name = "Python"

    def __str__(self) -> str:
        return f"Python {self.version}"


@dataclass(frozen=True)
class Requirement:
    """A requirement on a project, from the user, a file, or a candidate's metadata."""

    name: NormalizedName
    specifier: SpecifierSet = field(default_factory=SpecifierSet)
    extras: frozenset[NormalizedName] = frozenset()
    url: str | None = None
    text: str = ""  # as written, for messages
    parent: Candidate | None = field(default=None, compare=False)
    # The base of an extras candidate must be exactly that candidate.
    exact: Candidate | None = field(default=None, compare=False)
    # Version -> whether ``specifier`` contains it: resolvelib asks again for every pin at
    # every round (Provider.is_satisfied_by).
    satisfied: dict[Version, bool] = field(
        default_factory=dict, init=False, compare=False, hash=False, repr=False
    )
    # What the provider's preference reads of it, worked out once (``Provider.traits``):
    # resolvelib asks for the preference of every unpinned name at every round.
    traits: list[tuple[bool, bool, bool, bool]] = field(
        default_factory=list, init=False, compare=False, hash=False, repr=False
    )

    @property
    def identifier(self) -> str:
        return identifier_for(self.name, self.extras)

    def __str__(self) -> str:
        return self.text or f"{self.identifier}{self.specifier}"


@dataclass(frozen=True)
class RequiresPython:
    specifier: SpecifierSet
    parent: Candidate | None = field(default=None, compare=False)

    identifier = PYTHON_IDENTIFIER
    name = "Python"

    def __str__(self) -> str:
        return f"Python{self.specifier}"


AnyCandidate = Candidate | PythonCandidate
AnyRequirement = Requirement | RequiresPython
