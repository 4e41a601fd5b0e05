"""Requirements of a pyproject.toml (-r pyproject.toml, --extra, --all-extras)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from torrip.errors import ConfigError
from torrip.pyproject import is_pyproject, project_requirements

PROJECT = """
[project]
name = "My_App"
version = "1.0"
dependencies = ["requests>=2", "tomli; python_version < '3.11'"]

[project.optional-dependencies]
test = ["pytest>=8", "requests>=2"]
docs = ["sphinx"]
All = ["my-app[test,docs]", "rich"]
win = ["my.app[docs]; sys_platform == 'win32'"]
"""


def _project(tmp_path: Path, text: str = PROJECT) -> Path:
    path = tmp_path / "pyproject.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_dependencies_and_the_extras_asked_for(tmp_path: Path) -> None:
    path = _project(tmp_path)
    assert project_requirements(path) == ["requests>=2", 'tomli; python_version < "3.11"']
    assert project_requirements(path, ["TEST"]) == [
        "requests>=2",
        'tomli; python_version < "3.11"',
        "pytest>=8",
    ]


def test_an_extra_naming_the_project_brings_its_extras(tmp_path: Path) -> None:
    path = _project(tmp_path)
    assert project_requirements(path, ["all"])[2:] == ["sphinx", "pytest>=8", "rich"]
    # Under the marker of the requirement that named them.
    assert project_requirements(path, ["win"])[2:] == ['sphinx; sys_platform == "win32"']


def test_all_extras(tmp_path: Path) -> None:
    found = project_requirements(_project(tmp_path), all_extras=True)
    assert set(found) == {
        "requests>=2",
        'tomli; python_version < "3.11"',
        "pytest>=8",
        "sphinx",
        "rich",
        'sphinx; sys_platform == "win32"',
    }
    assert len(found) == len(set(found))


@pytest.mark.parametrize(
    ("text", "extras", "message"),
    [
        (PROJECT, ["nope"], "has no extra 'nope'"),
        ("[tool.x]\n", [], "has no [project] table"),
        (
            '[project]\nname = "a"\ndynamic = ["dependencies"]\n',
            [],
            "dependencies are dynamic",
        ),
        (
            '[project]\nname = "a"\ndependencies = ["not a requirement!"]\n',
            [],
            "invalid requirement",
        ),
        ('[project]\nname = "a"\ndependencies = "requests"\n', [], "must be a list"),
        (
            '[project]\nname = "a"\n[project.optional-dependencies]\nx = ["a[y]"]\ny = ["a[x]"]\n',
            ["x"],
            "include each other (x -> y -> x)",
        ),
        ("[project\n", [], "is not valid TOML"),
    ],
)
def test_what_cannot_be_read_is_a_clear_error(
    text: str, extras: list[str], message: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        project_requirements(_project(tmp_path, text), extras)


def test_a_missing_file_names_itself(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read") as raised:
        project_requirements(tmp_path / "pyproject.toml")
    assert raised.value.hint


def test_which_files_are_projects() -> None:
    assert is_pyproject("pyproject.toml") and is_pyproject("sub/dir/pyproject.toml")
    assert not is_pyproject("requirements.txt") and not is_pyproject("pylock.toml")
