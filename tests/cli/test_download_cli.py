"""``torrip download``: the wheels a requirement set resolves to, saved into a folder, then
installable with no index at all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fixtures.wheels import make_wheel


def _torrip(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "TORRIP_CONFIG_FILE": str(tmp_path / "none.toml"),
        "TORRIP_CACHE_DIR": str(tmp_path / "cache"),
    }
    return subprocess.run(
        [sys.executable, "-m", "torrip", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_download_then_install_offline(local_index, make_venv, tmp_path: Path) -> None:
    dists = tmp_path / "dists"
    wheels = [
        make_wheel(
            dists, "app", "1.0", requires_dist=["lib>=1", "winonly; sys_platform == 'win32'"]
        ),
        make_wheel(dists, "lib", "1.0"),
        make_wheel(dists, "lib", "2.0"),
        make_wheel(dists, "winonly", "1.0"),
    ]
    index = local_index(wheels, torrents=False)
    venv = make_venv()
    installed = _torrip(
        "install", "--index-url", index.url, "--python", str(venv), "lib==1.0", tmp_path=tmp_path
    )
    assert installed.returncode == 0, installed.stderr
    dest = tmp_path / "wheelhouse"
    common = ("download", "--index-url", index.url, "--python", str(venv), "-d", str(dest))

    only_app = _torrip(*common, "--no-deps", "app", tmp_path=tmp_path)
    assert only_app.returncode == 0, only_app.stderr
    assert sorted(p.name for p in dest.iterdir()) == ["app-1.0-py3-none-any.whl"]

    # As for an empty environment: lib 2.0, though the target has lib 1.0; no Windows wheel.
    downloaded = _torrip(*common, "app", tmp_path=tmp_path)
    assert downloaded.returncode == 0, downloaded.stderr
    assert "Successfully downloaded app-1.0 lib-2.0" in downloaded.stdout
    assert f"File was already downloaded {dest / 'app-1.0-py3-none-any.whl'}" in downloaded.stdout
    assert sorted(p.name for p in dest.iterdir()) == [
        "app-1.0-py3-none-any.whl",
        "lib-2.0-py3-none-any.whl",
    ]
    for path in dest.iterdir():
        assert path.read_bytes() == (dists / path.name).read_bytes()
    assert index.count(".whl") == 3  # lib 1.0 for the install, then app and lib 2.0, once each

    index.stop()
    offline = make_venv()
    placed = _torrip(
        "install", "--no-index", "-f", str(dest), "--python", str(offline), "app", tmp_path=tmp_path
    )
    assert placed.returncode == 0, placed.stderr
    assert "Successfully installed app-1.0 lib-2.0" in placed.stdout
    nothing = _torrip("download", "-d", str(dest), tmp_path=tmp_path)
    assert nothing.returncode == 1
    assert "at least one requirement" in nothing.stderr


def test_download_for_another_platform(local_index, make_venv, tmp_path: Path) -> None:
    """--platform and --python-version choose the files and judge the markers for that
    target; installing them needs --target (or --dry-run), as in pip."""
    dists = tmp_path / "dists"
    wheels = [
        make_wheel(
            dists,
            "fast",
            "1.0",
            tag="cp312-cp312-win_amd64",
            requires_dist=["winhelp; sys_platform == 'win32'"],
        ),
        make_wheel(dists, "fast", "1.0", tag="cp312-cp312-manylinux_2_17_x86_64"),
        make_wheel(dists, "fast", "1.0", tag="py3-none-any"),
        make_wheel(dists, "winhelp", "1.0"),
    ]
    index = local_index(wheels, torrents=False)
    venv = make_venv()
    dest = tmp_path / "for-windows"
    common = ("--index-url", index.url, "--python", str(venv))
    windows = _torrip(
        "download",
        *common,
        "-d",
        str(dest),
        "--platform",
        "win_amd64",
        "--python-version",
        "3.12",
        "fast",
        tmp_path=tmp_path,
    )
    assert windows.returncode == 0, windows.stderr
    assert sorted(p.name for p in dest.iterdir()) == [
        "fast-1.0-cp312-cp312-win_amd64.whl",
        "winhelp-1.0-py3-none-any.whl",
    ]
    linux = _torrip(
        "install",
        *common,
        "--dry-run",
        "--platform",
        "manylinux_2_28_x86_64",
        "--python-version",
        "312",
        "--report",
        "-",
        "-q",
        "fast",
        tmp_path=tmp_path,
    )
    assert linux.returncode == 0, linux.stderr
    (item,) = json.loads(linux.stdout)["install"]
    assert item["download_info"]["url"].endswith("fast-1.0-cp312-cp312-manylinux_2_17_x86_64.whl")
    refused = _torrip("install", *common, "--platform", "win_amd64", "fast", tmp_path=tmp_path)
    assert refused.returncode == 1
    assert "--target DIR, --prefix DIR or --dry-run" in refused.stderr
