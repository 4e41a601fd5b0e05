"""Requirements from a pyproject.toml: ``-r pyproject.toml`` with ``--extra``/``--all-extras``,
as uv reads it, and the file reading ``--group`` shares.

The project's ``[project] dependencies`` (PEP 621), and the ``optional-dependencies`` of the
extras asked for. An extra that names the project itself (``all = ["app[test,docs]"]``)
brings in those extras' requirements, under its marker. torrip builds nothing, so
dependencies that the build backend computes (``dynamic = ["dependencies"]``) are an error
that says so, not an empty list.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name

from torrip.errors import ConfigError

__all__ = ["is_pyproject", "project_requirements", "read_toml"]


def is_pyproject(path: str | Path) -> bool:
    """Whether ``-r path`` names a pyproject.toml rather than a requirements file."""
    return Path(path).name == "pyproject.toml"


def read_toml(path: Path, *, hint: str) -> dict[str, Any]:
    """The TOML document at ``path``; ConfigError (with ``hint`` when unreadable) if not."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        document: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
        return document
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror or error}", hint=hint) from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None


def project_requirements(
    path: Path, extras: Sequence[str] = (), *, all_extras: bool = False
) -> list[str]:
    """The requirement strings of the project in ``path``: its dependencies, then those of
    ``extras`` (every extra with ``all_extras``), each once."""
    project = read_toml(path, hint="Name the project's file: -r path/to/pyproject.toml.").get(
        "project"
    )
    if not isinstance(project, Mapping):
        raise ConfigError(
            f"{path} has no [project] table, so it lists no dependencies (PEP 621)",
            hint="torrip reads [project] dependencies and optional-dependencies; "
            "for [dependency-groups] use --group.",
        )
    name = canonicalize_name(str(project.get("name", "")))
    dynamic = project.get("dynamic", [])
    if isinstance(dynamic, list) and "dependencies" in dynamic:
        raise ConfigError(
            f"{path}: the project's dependencies are dynamic (its build backend computes "
            "them), and torrip builds nothing",
            hint="List them in [project] dependencies, or install the project with "
            "pip install . or uv pip install -r pyproject.toml.",
        )
    optional = _optional_dependencies(path, project)
    unknown = [extra for extra in extras if canonicalize_name(extra) not in optional]
    if unknown:
        known = ", ".join(sorted(optional)) or "none"
        raise ConfigError(
            f"{path} has no extra {unknown[0]!r}",
            hint=f"Its extras (optional-dependencies): {known}.",
        )
    chosen = sorted(optional) if all_extras else [canonicalize_name(e) for e in extras]
    found = [str(r) for r in _requirements(path, "dependencies", project.get("dependencies"))]
    for extra in chosen:
        found.extend(str(r) for r in _expanded(path, name, optional, extra, None, ()))
    return list(dict.fromkeys(found))


def _optional_dependencies(
    path: Path, project: Mapping[str, Any]
) -> dict[NormalizedName, list[Requirement]]:
    table = project.get("optional-dependencies", {})
    if not isinstance(table, Mapping):
        raise ConfigError(f"{path}: [project.optional-dependencies] must be a table")
    return {
        canonicalize_name(str(extra)): _requirements(path, f"optional-dependencies.{extra}", items)
        for extra, items in table.items()
    }


def _requirements(path: Path, where: str, items: object) -> list[Requirement]:
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise ConfigError(f"{path}: project {where} must be a list of requirement strings")
    try:
        return [Requirement(item) for item in items]
    except InvalidRequirement as error:
        raise ConfigError(
            f"{path}: project {where} holds an invalid requirement: {error}"
        ) from None


def _expanded(
    path: Path,
    project: NormalizedName,
    optional: Mapping[NormalizedName, list[Requirement]],
    extra: NormalizedName,
    marker: Marker | None,
    trail: tuple[str, ...],
) -> Iterator[Requirement]:
    """The requirements of ``extra``; one naming the project itself stands for its extras."""
    if extra in trail:
        cycle = " -> ".join((*trail, extra))
        raise ConfigError(f"{path}: the project's extras include each other ({cycle})")
    for requirement in optional.get(extra, ()):
        if canonicalize_name(requirement.name) != project:
            yield _under(requirement, marker)
            continue
        inner = _and(marker, requirement.marker)
        for named in sorted(canonicalize_name(e) for e in requirement.extras):
            yield from _expanded(path, project, optional, named, inner, (*trail, extra))


def _under(requirement: Requirement, marker: Marker | None) -> Requirement:
    if marker is None:
        return requirement
    copy = Requirement(str(requirement))
    copy.marker = _and(marker, requirement.marker)
    return copy


def _and(first: Marker | None, second: Marker | None) -> Marker | None:
    if first is None or second is None:
        return first or second
    return Marker(f"({first}) and ({second})")
