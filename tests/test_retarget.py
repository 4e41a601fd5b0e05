"""Files for another platform or Python than the target's: pip's --platform,
--python-version, --implementation and --abi."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from packaging.tags import Tag

from torrip.environment import TargetEnvironment, inspect_environment
from torrip.errors import ConfigError
from torrip.retarget import Retarget, parse_python_version, retarget


@pytest.fixture(scope="module")
def here() -> TargetEnvironment:
    return inspect_environment(Path(sys.executable))


def test_manylinux_for_another_python(here: TargetEnvironment) -> None:
    there = retarget(here, Retarget(platforms=("manylinux_2_28_x86_64",), python_version=(3, 12)))
    assert there.python_version == (3, 12, 0)
    for tag in (
        Tag("cp312", "cp312", "manylinux_2_28_x86_64"),
        Tag("cp312", "abi3", "manylinux_2_17_x86_64"),
        Tag("cp312", "cp312", "manylinux2014_x86_64"),  # older ones it runs, as in pip
        Tag("cp38", "abi3", "manylinux1_x86_64"),
        Tag("py3", "none", "any"),
    ):
        assert tag in there.tags, tag
    assert Tag("cp312", "cp312", "manylinux_2_29_x86_64") not in there.tags
    assert not [tag for tag in there.tags if tag.abi == "cp311"]  # cp311-abi3 runs on 3.12
    markers = there.marker_environment("")
    assert (markers["python_version"], markers["python_full_version"]) == ("3.12", "3.12.0")
    assert (markers["sys_platform"], markers["platform_machine"]) == ("linux", "x86_64")
    assert here.tags != there.tags  # the probed environment is left as it was


@pytest.mark.parametrize(
    ("platform", "tag", "markers"),
    [
        (
            "win_amd64",
            Tag("cp313", "cp313", "win_amd64"),
            {"sys_platform": "win32", "platform_system": "Windows", "os_name": "nt"},
        ),
        (
            "macosx_14_0_arm64",
            Tag("cp313", "abi3", "macosx_11_0_arm64"),
            {"sys_platform": "darwin", "platform_machine": "arm64", "os_name": "posix"},
        ),
    ],
)
def test_other_systems(
    here: TargetEnvironment, platform: str, tag: Tag, markers: dict[str, str]
) -> None:
    there = retarget(here, Retarget(platforms=(platform,), python_version=(3, 13)))
    assert tag in there.tags
    environment = there.marker_environment("")
    assert {key: environment[key] for key in markers} == markers


def test_pure_python_only_and_explicit_abis(here: TargetEnvironment) -> None:
    pure = retarget(here, Retarget(implementation="py", python_version=(3, 11)))
    assert {tag.abi for tag in pure.tags} == {"none"}
    assert Tag("py3", "none", "any") in pure.tags
    limited = retarget(here, Retarget(python_version=(3, 12), abis=("abi3",)))
    assert {tag.abi for tag in limited.tags} <= {"abi3", "none"}


def test_python_versions_as_pip_reads_them() -> None:
    assert parse_python_version("3.12") == (3, 12)
    assert parse_python_version("312") == (3, 12)
    assert parse_python_version("3.7.3") == (3, 7, 3)
    assert parse_python_version("3") == (3,)
    with pytest.raises(ConfigError, match="--python-version"):
        parse_python_version("three")
