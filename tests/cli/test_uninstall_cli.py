"""``torrip uninstall``: the RECORD's files exactly, never outside the environment, as pip asks."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.index import clean_installer_env
from fixtures.installed import PopulatedVenv
from install.support import package_wheel, snapshot, to_install
from torrip.cli import uninstall as uninstall_cli
from torrip.cli.main import main
from torrip.environment import inspect_environment
from torrip.install.transaction import install_transaction

PIP = Path(sys.executable).parent / "pip"


def installed_names(venv: PopulatedVenv) -> set[str]:
    return set(inspect_environment(venv.python).installed)


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch):
    """Make torrip believe stdin is a terminal; returns a function that sets what is typed."""
    monkeypatch.setattr(uninstall_cli, "_stdin_is_terminal", lambda: True)

    def type_in(text: str) -> None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(text))

    return type_in


def test_removes_exactly_what_was_installed(
    make_venv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    venv = make_venv()
    pristine = snapshot(venv)
    environment = inspect_environment(venv / "bin" / "python")
    wheels = [to_install(package_wheel(tmp_path, name, "1.0")) for name in ("alpha", "beta")]
    install_transaction(environment, wheels, remove=[])
    assert main(["uninstall", "-y", "alpha", "Beta", "--python", str(venv)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "Found existing installation: alpha 1.0",
        "Uninstalling alpha-1.0:",
        "  Successfully uninstalled alpha-1.0",
        "Found existing installation: beta 1.0",
        "Uninstalling beta-1.0:",
        "  Successfully uninstalled beta-1.0",
    ]
    after = snapshot(venv)
    # What pip leaves too: the emptied headers directory.
    assert {path for path in set(after) - set(pristine) if not path.startswith("include")} == set()
    assert {key: value for key, value in after.items() if key in pristine} == pristine


def test_same_files_and_output_as_pip(
    populated_venv: PopulatedVenv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not PIP.exists():
        pytest.skip("pip is not installed next to the test interpreter")
    twin = tmp_path / "twin"
    shutil.copytree(populated_venv.root, twin, symlinks=True)
    names = ["demo-pkg", "LIB_A", "nothere", "edit-me"]
    pip = subprocess.run(
        [str(PIP), "--python", str(twin / "bin" / "python"), "uninstall", "-y", *names],
        capture_output=True,
        text=True,
        env=clean_installer_env(tmp_path),
        check=True,
    )
    assert main(["uninstall", "-y", *names, "--python", str(populated_venv.root)]) == 0
    captured = capsys.readouterr()
    assert captured.out == pip.stdout
    assert "warning: Skipping nothere as it is not installed." in captured.err
    assert "Skipping nothere as it is not installed." in pip.stderr
    assert set(snapshot(populated_venv.root)) == set(snapshot(twin))


def test_refuses_a_record_pointing_outside_and_removes_nothing(
    populated_venv: PopulatedVenv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    record = populated_venv.site_packages / "lib_a-1.0.dist-info" / "RECORD"
    relative = Path(*[".."] * len(populated_venv.site_packages.parts)) / outside.relative_to("/")
    record.write_text(record.read_text() + f"{relative},,\n")
    before = snapshot(populated_venv.root)

    code = main(["uninstall", "-y", "demo-pkg", "lib-a", "--python", str(populated_venv.root)])

    assert code == 1
    err = capsys.readouterr().err
    assert "cannot uninstall lib-a 1.0" in err and "outside the environment" in err
    assert outside.read_text() == "keep me"
    assert snapshot(populated_venv.root) == before  # demo-pkg, asked first, is still there


def test_not_installed_is_a_warning_and_success(
    populated_venv: PopulatedVenv, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["uninstall", "-y", "nothere", "--python", str(populated_venv.root)]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == "warning: Skipping nothere as it is not installed."


def test_asks_on_a_terminal_and_n_keeps_the_package(
    populated_venv: PopulatedVenv, terminal, capsys: pytest.CaptureFixture[str]
) -> None:
    stray = populated_venv.site_packages / "demo_pkg" / "notes.txt"
    stray.write_text("added by hand")
    terminal("n\n")
    assert main(["uninstall", "demo-pkg", "--python", str(populated_venv.root)]) == 0
    site = populated_venv.site_packages
    assert capsys.readouterr().out.splitlines() == [
        "Found existing installation: Demo-Pkg 1.0",
        "Uninstalling Demo-Pkg-1.0:",
        "  Would remove:",
        f"    {populated_venv.root}/bin/demo",
        f"    {site}/demo_pkg-1.0.dist-info/*",
        f"    {site}/demo_pkg/*",
        "  Would not remove (might be manually added):",
        f"    {stray}",
        "Proceed (Y/n)? ",
    ]
    assert "demo-pkg" in installed_names(populated_venv)


@pytest.mark.parametrize("typed", ["y\n", "\n", "maybe\nY\n"])
def test_asks_on_a_terminal_and_yes_removes(
    populated_venv: PopulatedVenv, terminal, typed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    terminal(typed)
    assert main(["uninstall", "lib-a", "--python", str(populated_venv.root)]) == 0
    out = capsys.readouterr().out
    assert out.endswith("  Successfully uninstalled lib-a-1.0\n")
    assert ("was not one of the expected responses" in out) == typed.startswith("maybe")
    assert "lib-a" not in installed_names(populated_venv)


def test_end_of_input_on_a_terminal_removes_nothing(
    populated_venv: PopulatedVenv, terminal, capsys: pytest.CaptureFixture[str]
) -> None:
    terminal("")
    assert main(["uninstall", "lib-a", "--python", str(populated_venv.root)]) == 0
    assert "lib-a" in installed_names(populated_venv)


def test_yes_skips_the_question_on_a_terminal(
    populated_venv: PopulatedVenv, terminal, capsys: pytest.CaptureFixture[str]
) -> None:
    terminal("n\n")
    assert main(["uninstall", "-y", "lib-a", "--python", str(populated_venv.root)]) == 0
    assert "Proceed" not in capsys.readouterr().out
    assert "lib-a" not in installed_names(populated_venv)


def test_requirements_files_name_what_to_remove(
    populated_venv: PopulatedVenv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# the libraries\nlib-a==1.0\nLib_B>=2 ; python_version >= '3'\n")
    code = main(["uninstall", "-y", "-r", str(requirements), "--python", str(populated_venv.root)])
    assert code == 0
    assert installed_names(populated_venv) & {"lib-a", "lib-b"} == set()
    assert "demo-pkg" in installed_names(populated_venv)


def test_needs_a_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["uninstall", "-y"]) == 1
    assert "at least one requirement to uninstall" in capsys.readouterr().err


def test_an_invalid_name_is_ignored_with_a_warning(
    populated_venv: PopulatedVenv, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["uninstall", "-y", "not a name!", "lib-a", "--python", str(populated_venv.root)])
    assert code == 0
    assert "Invalid requirement: 'not a name!' ignored" in capsys.readouterr().err
    assert "lib-a" not in installed_names(populated_venv)
