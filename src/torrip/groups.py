"""PEP 735 dependency groups: ``--group [PATH:]NAME``, as pip's and uv's option.

The requirements of group NAME in the ``[dependency-groups]`` table of a pyproject.toml
(``./pyproject.toml`` unless PATH names another), with the groups it includes
(``{include-group = "test"}``), each once. Group names compare as PEP 735 normalizes them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from torrip.errors import ConfigError
from torrip.pyproject import read_toml

__all__ = ["group_requirements"]


def group_requirements(specs: Sequence[str]) -> list[str]:
    """The requirement strings of every ``[PATH:]NAME`` in ``specs``, in order."""
    tables: dict[Path, dict[str, list[Any]]] = {}
    found: list[str] = []
    for spec in specs:
        path_text, has_path, name = spec.rpartition(":")
        path = Path(path_text if has_path else "pyproject.toml")
        if path not in tables:
            tables[path] = _groups_of(path)
        found.extend(_requirements(tables[path], canonicalize_name(name), path, ()))
    return list(dict.fromkeys(found))


def _groups_of(path: Path) -> dict[str, list[Any]]:
    data = read_toml(
        path,
        hint="Run in the project's folder, or name its file: --group path/pyproject.toml:dev.",
    )
    table = data.get("dependency-groups", {})
    if not isinstance(table, Mapping):
        raise ConfigError(f"{path}: [dependency-groups] must be a table")
    groups: dict[str, list[Any]] = {}
    for name, items in table.items():
        key = canonicalize_name(str(name))
        if key in groups:
            raise ConfigError(f"{path}: dependency group {name!r} is defined twice")
        if not isinstance(items, list):
            raise ConfigError(f"{path}: dependency group {name!r} must be a list")
        groups[key] = items
    return groups


def _requirements(
    groups: Mapping[str, list[Any]], name: str, path: Path, trail: tuple[str, ...]
) -> Iterator[str]:
    if name in trail:
        cycle = " -> ".join((*trail, name))
        raise ConfigError(f"{path}: dependency groups include each other ({cycle})")
    if name not in groups:
        known = ", ".join(sorted(groups)) or "none"
        raise ConfigError(
            f"{path} has no dependency group {name!r}",
            hint=f"Its groups: {known}.",
        )
    for item in groups[name]:
        if isinstance(item, str):
            yield item
        elif isinstance(item, Mapping) and set(item) == {"include-group"}:
            yield from _requirements(
                groups, canonicalize_name(str(item["include-group"])), path, (*trail, name)
            )
        else:
            raise ConfigError(
                f"{path}: dependency group {name!r} holds {item!r}, which is neither a "
                "requirement nor {include-group = ...}"
            )
