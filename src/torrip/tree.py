"""The installed distributions as a dependency tree, drawn as ``uv pip tree`` draws it.

    tree_lines(environment)                                  # from what nothing requires
    tree_lines(environment, packages=["flask"], depth=1)     # flask and what it requires
    tree_lines(environment, packages=["markupsafe"], invert=True)   # what requires it

A requirement counts when its marker holds for the target (no extra requested, as
``torrip check`` reads them) and what it names is installed; what is missing is
``torrip check``'s to report. Children are sorted by name. A package whose requirements
were drawn above (or stopped at ``depth``) is marked ``(*)`` and not drawn again
(``dedupe=False`` draws it again);
a requirement that would close a cycle is left out, and packages that only require each
other are drawn from the first of them by name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from torrip.environment import TargetEnvironment

__all__ = ["required_names", "tree_lines"]


@dataclass(frozen=True)
class _Edge:
    """``requirer`` requires ``required`` by ``requirement``."""

    requirer: NormalizedName
    required: NormalizedName
    requirement: Requirement


def tree_lines(
    environment: TargetEnvironment,
    *,
    packages: Iterable[str] = (),
    prune: Iterable[str] = (),
    depth: int = 255,
    invert: bool = False,
    dedupe: bool = True,
    specifiers: bool = False,
) -> list[str]:
    """The tree's lines. Its roots: ``packages``, else every installed distribution that
    none requires (that requires none, with ``invert``), sorted. ``prune``: names left out
    wherever they would stand; ``depth``: levels drawn below the roots."""
    pruned = {canonicalize_name(name) for name in prune}
    edges = [e for e in _edges(environment) if not {e.requirer, e.required} & pruned]
    below: dict[NormalizedName, list[_Edge]] = {}
    for edge in edges:
        below.setdefault(edge.required if invert else edge.requirer, []).append(edge)
    for children in below.values():
        children.sort(key=lambda e: e.requirer if invert else e.required)
    if packages:
        roots = sorted({canonicalize_name(name) for name in packages} - pruned)
    else:
        above = {e.requirer if invert else e.required for e in edges}
        roots = sorted(set(environment.installed) - above - pruned)
    drawing = _Drawing(environment.installed, below, invert, depth, dedupe, specifiers)
    for root in roots:
        if root in environment.installed:
            drawing.draw(root, None, "", "", 0, (root,))
    if not packages:  # packages that only require each other: no root reaches them
        for name in sorted(set(environment.installed) - pruned):
            if name not in drawing.drawn:
                drawing.draw(name, None, "", "", 0, (name,))
    if drawing.deduped:
        drawing.lines.append("(*) Package tree already displayed")
    return drawing.lines


def required_names(environment: TargetEnvironment) -> set[NormalizedName]:
    """The installed distributions that another installed one requires (``list
    --not-required`` leaves them out)."""
    return {edge.required for edge in _edges(environment)}


def _edges(environment: TargetEnvironment) -> list[_Edge]:
    markers = environment.marker_environment()
    installed = environment.installed
    edges = []
    for name, dist in installed.items():
        seen: set[NormalizedName] = set()
        for text in dist.requires_dist:
            try:
                requirement = Requirement(text)
            except InvalidRequirement:
                continue  # torrip check names it
            required = canonicalize_name(requirement.name)
            if required in seen or required not in installed or required == name:
                continue
            if requirement.marker is None or requirement.marker.evaluate(markers):
                seen.add(required)
                edges.append(_Edge(name, required, requirement))
    return edges


class _Drawing:
    def __init__(
        self,
        installed: Mapping[NormalizedName, object],
        below: Mapping[NormalizedName, Sequence[_Edge]],
        invert: bool,
        depth: int,
        dedupe: bool,
        specifiers: bool,
    ) -> None:
        self.installed = installed
        self.below = below
        self.invert = invert
        self.depth = depth
        self.dedupe = dedupe
        self.specifiers = specifiers
        self.shown: set[NormalizedName] = set()  # drawn with what is below them
        self.drawn: set[NormalizedName] = set()  # drawn at all
        self.deduped = False
        self.lines: list[str] = []

    def draw(
        self,
        name: NormalizedName,
        edge: _Edge | None,
        prefix: str,
        child_prefix: str,
        level: int,
        path: tuple[NormalizedName, ...],
    ) -> None:
        self.drawn.add(name)
        version = getattr(self.installed[name], "version", "")
        label = f"{prefix}{name} v{version}{self._specifier(edge)}"
        children = [
            e
            for e in self.below.get(name, ())
            if (e.requirer if self.invert else e.required) not in path
        ]
        if not children:
            self.lines.append(label)
            return
        if self.dedupe and name in self.shown:
            self.lines.append(f"{label} (*)")
            self.deduped = True
            return
        self.lines.append(label)
        self.shown.add(name)  # drawn below here, or would be but for the depth
        if level >= self.depth:
            return
        for position, child in enumerate(children):
            last = position == len(children) - 1
            other = child.requirer if self.invert else child.required
            self.draw(
                other,
                child,
                child_prefix + ("└── " if last else "├── "),
                child_prefix + ("    " if last else "│   "),
                level + 1,
                (*path, other),
            )

    def _specifier(self, edge: _Edge | None) -> str:
        if not self.specifiers or edge is None:
            return ""
        specifier = _ordered(edge.requirement.specifier) or "*"
        if self.invert:
            return f" [requires: {edge.required} {specifier}]"
        return f" [required: {specifier}]"


def _ordered(specifiers: SpecifierSet) -> str:
    """``>=4.0.0, <5``: versions normalized, lower ones first, as uv writes them (packaging
    keeps each version as written and sorts the text)."""
    parts = []
    for specifier in specifiers:
        text = specifier.version
        wildcard = ".*" if text.endswith(".*") else ""
        try:
            version: Version | None = Version(text.removesuffix(".*"))
        except InvalidVersion:  # === arbitrary equality: as written
            version = None
        shown = str(specifier) if version is None else f"{specifier.operator}{version}{wildcard}"
        parts.append(((version is None, version or text), shown))
    return ", ".join(shown for _, shown in sorted(parts, key=lambda part: part[0]))
