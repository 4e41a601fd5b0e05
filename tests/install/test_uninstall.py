"""uninstall: RECORD-based, never outside the environment, tidy, undoable through a stash."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from install.support import package_wheel, pip_install, site_packages, snapshot, to_install
from torrip.environment import TargetEnvironment
from torrip.errors import UninstallError
from torrip.install.lock import lock_path
from torrip.install.transaction import install_transaction
from torrip.install.uninstall import Stash, is_inside, uninstall


def _import(environment: TargetEnvironment, modules: str) -> None:
    """Import in the target, writing bytecode (that no RECORD lists) as a user's run would."""
    environ = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([environment.python, "-c", f"import {modules}"], check=True, env=environ)


def _install(environment: TargetEnvironment, directory: Path, *names: str) -> TargetEnvironment:
    wheels = [to_install(package_wheel(directory, name, "1.0")) for name in names]
    install_transaction(environment, wheels, remove=[])
    return environment.refresh_installed()


def test_uninstall_removes_every_file_and_the_directories_it_emptied(
    environment: TargetEnvironment, tmp_path: Path
) -> None:
    prefix = Path(environment.prefix)
    pristine = snapshot(prefix)
    environment = _install(environment, tmp_path, "alpha", "beta")
    _import(environment, "alpha.sub.only_in_alpha_1_0")
    assert list(site_packages(environment).glob("alpha/**/__pycache__/*.pyc"))

    removed = uninstall(environment, ["Alpha", "beta", "not-installed"])

    assert [(dist.name, str(dist.version)) for dist in removed] == [
        ("alpha", "1.0"),
        ("beta", "1.0"),
    ]
    after = snapshot(prefix)
    # What pip also leaves: the (emptied) headers directory of this Python.
    assert set(after) - set(pristine) == {
        "include/site",
        f"include/site/{_headers_leaf(environment)}",
    }
    assert {key: value for key, value in after.items() if key in pristine} == pristine
    assert not (Path(environment.scheme["scripts"]) / "alpha-cli").exists()
    assert not lock_path(environment).exists()


def _headers_leaf(environment: TargetEnvironment) -> str:
    return Path(environment.scheme["headers"]).name


def test_uninstall_keeps_other_distributions(
    environment: TargetEnvironment, tmp_path: Path
) -> None:
    environment = _install(environment, tmp_path, "alpha", "beta")
    uninstall(environment, ["alpha"])
    remaining = environment.refresh_installed().installed
    assert "alpha" not in remaining and "beta" in remaining
    assert (Path(environment.scheme["scripts"]) / "beta-cli").exists()
    assert (site_packages(environment) / "beta/sub/__init__.py").exists()


def test_record_entry_outside_the_environment_refuses_everything(
    environment: TargetEnvironment, tmp_path: Path
) -> None:
    environment = _install(environment, tmp_path, "alpha", "beta")
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    record = site_packages(environment) / "beta-1.0.dist-info/RECORD"
    record.write_text(record.read_text() + f"{victim},,\n")
    before = snapshot(Path(environment.prefix))

    with pytest.raises(UninstallError, match=r"victim\.txt.*outside the environment"):
        uninstall(environment, ["alpha", "beta"])

    assert victim.read_text() == "precious"
    assert snapshot(Path(environment.prefix)) == before  # alpha, planned first, is still there


def test_record_entry_through_a_symlink_out_of_the_environment(
    environment: TargetEnvironment, tmp_path: Path
) -> None:
    environment = _install(environment, tmp_path, "alpha")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("precious")
    (site_packages(environment) / "alpha" / "link").symlink_to(outside)
    record = site_packages(environment) / "alpha-1.0.dist-info/RECORD"
    record.write_text(record.read_text() + "alpha/link/victim.txt,,\n")

    with pytest.raises(UninstallError, match=r"alpha/link/victim\.txt"):
        uninstall(environment, ["alpha"])
    assert (outside / "victim.txt").read_text() == "precious"


def test_egg_info_without_record_is_a_clear_error(
    environment: TargetEnvironment, tmp_path: Path
) -> None:
    egg_info = site_packages(environment) / "legacy-1.0.egg-info"
    egg_info.mkdir()
    (egg_info / "PKG-INFO").write_text("Metadata-Version: 1.1\nName: legacy\nVersion: 1.0\n\n")
    (site_packages(environment) / "legacy.py").write_text("")
    environment = environment.refresh_installed()
    with pytest.raises(UninstallError, match=r"legacy 1\.0.*no RECORD") as refused:
        uninstall(environment, ["legacy"])
    assert refused.value.hint and "by hand" in refused.value.hint
    assert (site_packages(environment) / "legacy.py").exists()


def test_stash_puts_everything_back(environment: TargetEnvironment, tmp_path: Path) -> None:
    environment = _install(environment, tmp_path, "alpha", "beta")
    _import(environment, "alpha, beta")
    before = snapshot(Path(environment.prefix))
    stash = Stash.create(environment)

    uninstall(environment, ["alpha", "beta"], stash=stash.directory)
    assert not (site_packages(environment) / "alpha").exists()

    assert stash.restore() == []
    assert snapshot(Path(environment.prefix)) == before


def test_is_inside_is_not_fooled_by_a_shared_prefix(tmp_path: Path) -> None:
    site = tmp_path / "lib/site-packages"
    (tmp_path / "lib/site-packages-evil").mkdir(parents=True)
    site.mkdir()
    assert is_inside(site / "pkg/mod.py", [site])
    assert not is_inside(tmp_path / "lib/site-packages-evil/mod.py", [site])
    assert not is_inside(site / "../site-packages-evil/mod.py", [site])
    assert not is_inside(site, [site])  # never the root itself


def test_uninstalls_what_pip_installed(environment: TargetEnvironment, tmp_path: Path) -> None:
    """pip's RECORD: bytecode listed, scripts as ../../../bin/..., INSTALLER pip."""
    prefix = Path(environment.prefix)
    pristine = snapshot(prefix)
    pip_install(environment.python, package_wheel(tmp_path, "alpha", "1.0"))  # compiles
    environment = environment.refresh_installed()
    assert environment.installed["alpha"].installer == "pip"
    assert list(site_packages(environment).glob("alpha/__pycache__/*.pyc"))

    uninstall(environment, ["alpha"])

    after = snapshot(prefix)
    assert set(after) - set(pristine) == {
        "include/site",
        f"include/site/{_headers_leaf(environment)}",
    }
    assert {key: value for key, value in after.items() if key in pristine} == pristine
