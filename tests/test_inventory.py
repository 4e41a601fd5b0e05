"""The inventory core: list, freeze, show and check results for a real venv, and their rules."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from fixtures.installed import PopulatedVenv, add_metadata_headers
from torrip.environment import TargetEnvironment, inspect_environment
from torrip.inventory import (
    check_requirements,
    dev_package_names,
    freeze_lines,
    list_packages,
    show_packages,
)


@pytest.fixture
def environment(populated_venv: PopulatedVenv) -> TargetEnvironment:
    return inspect_environment(populated_venv.python)


def test_list_keeps_the_metadata_spelling_and_the_normalized_version(
    environment: TargetEnvironment, populated_venv: PopulatedVenv
) -> None:
    packages = {package.name: package for package in list_packages(environment)}
    zeta = packages["zeta"]
    assert (zeta.version, zeta.normalized_version, zeta.build_tag) == ("1.0.0-rc1", "1.0.0rc1", "7")
    assert packages["edit-me"].editable_location == populated_venv.editable_project
    assert packages["edit-me"].installer == "pip"
    assert packages["Demo-Pkg"].installer == "torrip"
    assert packages["Demo-Pkg"].location == populated_venv.site_packages


def test_freeze_leaves_out_build_tools_before_python_3_12(environment: TargetEnvironment) -> None:
    assert "setuptools==1.0" not in freeze_lines(replace(environment, python_version=(3, 11, 9)))
    assert "setuptools==1.0" in freeze_lines(replace(environment, python_version=(3, 12, 0)))
    assert "setuptools==1.0" in freeze_lines(environment, include_all=True)
    assert dev_package_names((3, 13)) == {"pip"}
    assert dev_package_names((3, 8)) == {"pip", "setuptools", "distribute", "wheel"}


def test_freeze_sorts_case_insensitively(environment: TargetEnvironment) -> None:
    names = [line.split("==")[0] for line in freeze_lines(environment) if "==" in line]
    names = [name for name in names if not name.startswith("#")]
    assert names == sorted(names, key=str.lower)


def test_show_reports_missing_names_sorted_and_each_package_once(
    environment: TargetEnvironment,
) -> None:
    result = show_packages(environment, ["zzz", "lib-a", "LIB_A", "aaa"])
    assert [details.name for details in result.found] == ["lib-a"]
    assert result.missing == ("aaa", "zzz")
    demo = show_packages(environment, ["demo-pkg"]).found[0]
    # Markers hold for the target only: no winonly; extras not requested: no extra-dep.
    assert demo.requires == ("conflicting", "lib-a", "Lib_B", "missing-dep")
    assert demo.home_page == "https://example.org/demo"
    assert demo.entry_points == ("[console_scripts]", "demo = demo_pkg:main")
    assert demo.files is not None and "demo_pkg/__init__.py" in demo.files


def test_check_evaluates_markers_for_the_target_not_for_torrip(
    environment: TargetEnvironment,
) -> None:
    here = check_requirements(environment)
    assert [m.dependency for m in here.missing] == ["missing-dep"]
    windows = replace(environment, markers={**environment.markers, "sys_platform": "win32"})
    assert [m.dependency for m in check_requirements(windows).missing] == [
        "missing-dep",
        "winonly",
    ]


def test_check_ignores_extras_and_accepts_prereleases(
    environment: TargetEnvironment, populated_venv: PopulatedVenv
) -> None:
    add_metadata_headers(
        populated_venv.site_packages / "lib_b-2.0.dist-info",
        [("Requires-Dist", "zeta>=0.9"), ("Requires-Dist", "lib-a[fast]>=1")],
    )
    result = check_requirements(environment.refresh_installed())
    assert [(c.project, c.dependency) for c in result.conflicts] == [("demo-pkg", "conflicting")]
    assert [c.installed_version for c in result.conflicts] == ["1.0"]
    assert not result.ok


def test_check_of_a_consistent_environment(make_venv) -> None:
    result = check_requirements(inspect_environment(make_venv() / "bin" / "python"))
    assert result.ok and result.missing == result.conflicts == ()


def test_an_unreadable_requirement_is_reported_not_raised(
    environment: TargetEnvironment, populated_venv: PopulatedVenv
) -> None:
    add_metadata_headers(
        populated_venv.site_packages / "lib_b-2.0.dist-info", [("Requires-Dist", "bad !!")]
    )
    result = check_requirements(environment.refresh_installed())
    assert [(u.project, u.text) for u in result.unreadable] == [("lib-b", "bad !!")]
    assert not result.ok
    lib_b = show_packages(environment.refresh_installed(), ["lib-b"]).found[0]
    assert "bad !!" in lib_b.requires  # pip shows the raw lines then
    assert Path(lib_b.location).is_dir()
