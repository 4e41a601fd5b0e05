"""PEP 735 dependency groups read from pyproject.toml (``--group``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from torrip.errors import ConfigError
from torrip.groups import group_requirements

PYPROJECT = """
[project]
name = "demo"
version = "0.1"

[dependency-groups]
test = ["pytest>=8", {include-group = "Typing_Stubs"}, "coverage"]
typing-stubs = ["types-requests", "coverage"]
docs = ["sphinx"]
loop-a = [{include-group = "loop-b"}]
loop-b = [{include-group = "loop-a"}]
odd = [42]
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_group_with_the_groups_it_includes(project: Path) -> None:
    # Included groups in place, names normalized, each requirement once.
    assert group_requirements(["test"]) == ["pytest>=8", "types-requests", "coverage"]
    assert group_requirements(["docs", f"{project / 'pyproject.toml'}:TEST"]) == [
        "sphinx",
        "pytest>=8",
        "types-requests",
        "coverage",
    ]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nope", "has no dependency group 'nope'"),
        ("loop-a", r"include each other \(loop-a -> loop-b -> loop-a\)"),
        ("odd", "neither a requirement"),
        ("missing.toml:test", "cannot read missing.toml"),
    ],
)
def test_bad_groups_are_clear_errors(project: Path, spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        group_requirements([spec])
