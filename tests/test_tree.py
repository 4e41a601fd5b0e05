"""`torrip tree`: the installed packages drawn as uv pip tree draws them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from fixtures.installed import PopulatedVenv
from torrip.environment import TargetEnvironment, inspect_environment
from torrip.tree import tree_lines

GRAPH = {
    "App": ("1.0", ["lib>=1,<3", "util", "winonly; sys_platform == 'win32'", "missing-dep"]),
    "lib": ("2.0", ["util>=0.1", "extra-dep; extra == 'x'"]),
    "util": ("0.5", ["base==1.*"]),
    "base": ("1", []),
    "winonly": ("1", []),
    "extra-dep": ("1", []),
    "tool": ("3.0", ["util"]),
    "cycle-a": ("1", ["cycle-b"]),
    "cycle-b": ("1", ["cycle-a"]),
}


@pytest.fixture
def environment(populated_venv: PopulatedVenv) -> TargetEnvironment:
    """The venv's own target, holding the distributions of GRAPH instead of its own."""
    real = inspect_environment(populated_venv.python)
    model = next(iter(real.installed.values()))
    installed = {
        canonicalize_name(name): model._replace(
            name=canonicalize_name(name),
            display_name=name,
            version=Version(version),
            requires_dist=tuple(requires),
        )
        for name, (version, requires) in GRAPH.items()
    }
    return replace(real, installed=MappingProxyType(installed))


def test_the_whole_tree(environment: TargetEnvironment) -> None:
    assert tree_lines(environment) == [
        "app v1.0",
        "├── lib v2.0",
        "│   └── util v0.5",
        "│       └── base v1",
        "└── util v0.5 (*)",
        "extra-dep v1",  # only an extra asks for it, and none was asked for
        "tool v3.0",
        "└── util v0.5 (*)",
        "winonly v1",  # its marker does not hold here
        "cycle-a v1",  # required, but only by what it requires
        "└── cycle-b v1",
        "(*) Package tree already displayed",
    ]


def test_depth_packages_prune_and_no_dedupe(environment: TargetEnvironment) -> None:
    assert tree_lines(environment, packages=["App"], depth=1) == [
        "app v1.0",
        "├── lib v2.0",
        "└── util v0.5",
    ]
    assert tree_lines(environment, packages=["app", "tool"], prune=["lib"], dedupe=False) == [
        "app v1.0",
        "└── util v0.5",
        "    └── base v1",
        "tool v3.0",
        "└── util v0.5",
        "    └── base v1",
    ]
    assert tree_lines(environment, packages=["base"], depth=0) == ["base v1"]


def test_inverted_with_specifiers(environment: TargetEnvironment) -> None:
    assert tree_lines(environment, packages=["util"], invert=True, specifiers=True) == [
        "util v0.5",
        "├── app v1.0 [requires: util *]",
        "├── lib v2.0 [requires: util >=0.1]",
        "│   └── app v1.0 [requires: lib >=1, <3]",
        "└── tool v3.0 [requires: util *]",
    ]
    assert tree_lines(environment, packages=["util"], specifiers=True) == [
        "util v0.5",
        "└── base v1 [required: ==1.*]",
    ]


def test_the_command_line(populated_venv: PopulatedVenv, tmp_path: Path) -> None:
    """Against the populated venv itself: its one package with installed requirements."""
    import subprocess
    import sys

    ran = subprocess.run(
        [sys.executable, "-m", "torrip", "tree", "--python", str(populated_venv.python)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert "demo-pkg v1.0" in lines, lines
    unknown = subprocess.run(
        [sys.executable, "-m", "torrip", "tree", "--package", "nope", "--python",
         str(populated_venv.python)],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert unknown.returncode == 1 and "nope is not installed" in unknown.stderr
