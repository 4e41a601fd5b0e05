"""``torrip list|freeze|show|check`` print what pip prints for the same venv, and exit alike."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.index import clean_installer_env
from fixtures.installed import PopulatedVenv, add_metadata_headers
from torrip.cli.main import main

PIP = Path(sys.executable).parent / "pip"

# Every command is run by pip and by torrip against the same venv.
COMMANDS = [
    ["list"],
    ["list", "-v"],
    ["list", "--format", "json"],
    ["list", "--format", "json", "-v"],
    ["list", "--format", "freeze"],
    ["list", "--not-required"],
    ["list", "--not-required", "--format", "json"],
    ["list", "--exclude", "LIB_A", "--exclude", "zeta", "--format", "freeze"],
    ["freeze"],
    ["freeze", "--all"],
    ["show", "Demo-Pkg", "LIB_A", "nothere"],
    ["show", "demo_pkg", "-v", "--files"],
    ["show", "edit-me", "lib-b"],
    ["show", "nothere"],
    ["check"],
]


def run_pip(python: Path, args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    if not PIP.exists():
        pytest.skip("pip is not installed next to the test interpreter")
    return subprocess.run(
        [str(PIP), "--python", str(python), *args],
        capture_output=True,
        text=True,
        env=clean_installer_env(tmp_path),
        timeout=120,
    )


def run_torrip(
    python: Path, args: list[str], capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([*args, "--python", str(python)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_like_pip(
    venv: PopulatedVenv,
    commands: list[list[str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for args in commands:
        pip = run_pip(venv.python, args, tmp_path)
        code, out, err = run_torrip(venv.python, args, capsys)
        assert (code, out) == (pip.returncode, pip.stdout), (args, pip.stderr, err)
        # pip's warnings say WARNING:, torrip's warning:; the text after is the same.
        warnings = [line.split(": ", 1)[1] for line in pip.stderr.splitlines() if "WARNING" in line]
        assert [line.split(": ", 1)[1] for line in err.splitlines()] == warnings, args


def test_output_and_exit_codes_are_pips(
    populated_venv: PopulatedVenv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_like_pip(populated_venv, COMMANDS, tmp_path, capsys)


def test_what_the_fixture_installed_reads_as_expected(
    populated_venv: PopulatedVenv, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not only the same as pip: the right answer (pip could change)."""
    python = populated_venv.python
    code, out, _ = run_torrip(python, ["list", "--format", "json"], capsys)
    assert code == 0
    assert [item["name"] for item in json.loads(out)] == [
        "conflicting",
        "Demo-Pkg",
        "edit-me",
        "lib-a",
        "Lib_B",
        "setuptools",
        "zeta",
    ]
    code, out, _ = run_torrip(python, ["freeze"], capsys)
    assert "setuptools" not in out and "zeta==1.0.0rc1\n" in out
    assert f"-e {populated_venv.editable_project}\n" in out
    code, out, _ = run_torrip(python, ["check"], capsys)
    assert code == 1
    assert out.splitlines() == [
        "demo-pkg 1.0 requires missing-dep, which is not installed.",
        "demo-pkg 1.0 has requirement conflicting>=2, but you have conflicting 1.0.",
    ]
    code, out, _ = run_torrip(python, ["show", "lib-a"], capsys)
    assert "Required-by: Demo-Pkg, Lib_B\n" in out


def test_broken_metadata_and_unsupported_wheels_like_pip(
    populated_venv: PopulatedVenv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = populated_venv.site_packages
    # A wheel for another platform, as `pip install --platform --target` can leave behind.
    wheel = site / "zeta-1.0.0rc1.dist-info" / "WHEEL"
    wheel.write_text(wheel.read_text().replace("Tag: py3-none-any", "Tag: cp27-cp27mu-win32"))
    code, out, _ = run_torrip(populated_venv.python, ["check"], capsys)
    assert code == 1
    assert out.splitlines()[-1] == "zeta 1.0.0rc1 is not supported on this platform"
    assert_like_pip(populated_venv, [["check"]], tmp_path, capsys)

    # A requirement no one can parse: a warning and exit status 1, as pip.
    add_metadata_headers(site / "conflicting-1.0.dist-info", [("Requires-Dist", "not valid !!")])
    code, _, err = run_torrip(populated_venv.python, ["check"], capsys)
    assert code == 1
    assert "warning: Error parsing dependencies of conflicting" in err
    assert run_pip(populated_venv.python, ["check"], tmp_path).returncode == 1


def test_direct_url_installs_freeze_as_direct_references(
    populated_venv: PopulatedVenv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dist_info = populated_venv.site_packages / "lib_a-1.0.dist-info"
    digest = hashlib.sha256(b"lib-a").hexdigest()
    direct_url = {
        "url": "https://files.example/lib_a-1.0-py3-none-any.whl",
        "archive_info": {"hashes": {"sha256": digest}},
    }
    (dist_info / "direct_url.json").write_text(json.dumps(direct_url))
    vcs = populated_venv.site_packages / "lib_b-2.0.dist-info" / "direct_url.json"
    vcs.write_text(
        json.dumps(
            {
                "url": "https://git.example/lib-b",
                "vcs_info": {"vcs": "git", "commit_id": "0123abc"},
                "subdirectory": "src/lib",
            }
        )
    )
    _, out, _ = run_torrip(populated_venv.python, ["freeze"], capsys)
    assert f"lib-a @ {direct_url['url']}#sha256={digest}\n" in out
    assert "Lib_B @ git+https://git.example/lib-b@0123abc#subdirectory=src/lib\n" in out
    assert_like_pip(populated_venv, [["freeze"]], tmp_path, capsys)


def test_show_without_names_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show"]) == 1
    assert "Please provide a package name" in capsys.readouterr().err


def test_an_empty_venv(make_venv, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    venv = make_venv()
    code, out, _ = run_torrip(venv / "bin" / "python", ["list"], capsys)
    assert (code, out) == (0, "")
    code, out, _ = run_torrip(venv / "bin" / "python", ["list", "--format", "json"], capsys)
    assert (code, out) == (0, "[]\n")
    code, out, _ = run_torrip(venv / "bin" / "python", ["check"], capsys)
    assert (code, out) == (0, "No broken requirements found.\n")


def test_list_outdated(local_index, make_venv, tmp_path: Path) -> None:
    """-o lists what the index has a newer wheel of, as install -U would pick it: not a
    version whose Requires-Python excludes the target, not a yanked one, pre-releases only
    with --pre; what is up to date or not on the index is left out."""
    from fixtures.wheels import make_wheel

    dists = tmp_path / "dists"
    wheels = [
        make_wheel(dists, "lib", "1.0"),
        make_wheel(dists, "lib", "2.0"),
        make_wheel(dists, "lib", "2.5", requires_python=">=4"),
        make_wheel(dists, "lib", "2.8"),
        make_wheel(dists, "lib", "3.0rc1"),
        make_wheel(dists, "app", "1.0"),
    ]
    index = local_index(wheels, torrents=False, yanked={"lib-2.8-py3-none-any.whl": "broken"})
    env = {
        "TORRIP_CONFIG_FILE": str(tmp_path / "none.toml"),
        "TORRIP_CACHE_DIR": str(tmp_path / "c"),
    }
    venv = make_venv()
    common = ["--index-url", index.url, "--python", str(venv)]
    installed = subprocess.run(
        [sys.executable, "-m", "torrip", "install", *common, "lib==1.0", "app"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=False,
    )
    assert installed.returncode == 0, installed.stderr

    def outdated(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "torrip", "list", "--outdated", *common, *extra],
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            check=False,
        )

    columns = outdated()
    assert columns.returncode == 0, columns.stderr
    assert columns.stdout.splitlines() == [
        "Package Version Latest Type",
        "------- ------- ------ -----",
        "lib     1.0     2.0    wheel",
    ]
    assert json.loads(outdated("--pre", "--format", "json").stdout) == [
        {"name": "lib", "version": "1.0", "latest_version": "3.0rc1", "latest_filetype": "wheel"}
    ]
    refused = outdated("--format", "freeze")
    assert refused.returncode == 1
    assert "cannot be used with --outdated" in refused.stderr
