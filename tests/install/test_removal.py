"""What an uninstall would remove, listed for a person: pip's compact "Would remove" listing."""

from __future__ import annotations

from pathlib import Path

import pytest

from install.support import package_wheel, site_packages, to_install
from torrip.environment import TargetEnvironment
from torrip.errors import UninstallError
from torrip.install.removal import listing_for, plan_uninstall
from torrip.install.transaction import install_transaction


def test_listing_folds_package_folders_and_lists_strays(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    dist_info = tmp_path / "pkg-1.0.dist-info"
    dist_info.mkdir()
    files = [
        package / "__init__.py",
        package / "core.py",
        package / "sub" / "__init__.py",
        package / "__pycache__" / "core.cpython-312.pyc",
        dist_info / "METADATA",
        dist_info / "RECORD",
        tmp_path / "bin" / "pkg-cli",
        tmp_path / "loose.py",
    ]
    for path in files:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    (package / "sub" / "data.json").write_text("{}")  # not in the RECORD

    listing = listing_for(files)

    assert listing.remove == (
        f"{tmp_path}/bin/pkg-cli",
        f"{tmp_path}/loose.py",
        f"{dist_info}/*",
        f"{package}/*",
    )
    assert listing.keep == (f"{package}/sub/data.json",)


def test_plan_names_the_missing_once_and_refuses_before_anything_moves(
    environment: TargetEnvironment, tmp_path: Path
) -> None:
    install_transaction(environment, [to_install(package_wheel(tmp_path, "alpha", "1.0"))], [])
    environment = environment.refresh_installed()
    plan = plan_uninstall(environment, ["Alpha", "alpha", "gone", "GONE"])
    assert [removal.distribution.name for removal in plan.removals] == ["alpha"]
    assert plan.missing == ("gone",)
    assert all(path.exists() for path in plan.removals[0].paths)

    record = site_packages(environment) / "alpha-1.0.dist-info" / "RECORD"
    record.write_text(record.read_text() + "/etc/passwd,,\n")
    with pytest.raises(UninstallError, match="outside the environment"):
        plan_uninstall(environment, ["alpha"])
