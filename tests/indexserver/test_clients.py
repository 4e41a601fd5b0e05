"""pip and uv install, unchanged, from an index that torrip built and serves."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.index import clean_installer_env
from fixtures.wheels import make_wheel
from torrip.indexserver import IndexServer, RequestRecord, build_index

UV = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")


@pytest.fixture
def dists(tmp_path: Path) -> Path:
    folder = tmp_path / "dists"
    make_wheel(folder, "Demo_Pkg", "1.0", requires_python=">=3.8")
    make_wheel(folder, "Demo_Pkg", "2.0", requires_python=">=3.8")
    # Never chosen: the interpreter is too old for it, so Requires-Python must be read.
    make_wheel(folder, "Demo_Pkg", "3.0", requires_python=">=4")
    return folder


@pytest.fixture
def requests() -> list[RequestRecord]:
    return []


@pytest.fixture(params=["relative", "absolute"])
def served(
    request: pytest.FixtureRequest, dists: Path, tmp_path: Path, requests: list[RequestRecord]
) -> Iterator[IndexServer]:
    root = tmp_path / "public"
    with IndexServer(root, on_request=requests.append) as server:
        base_url = server.base_url if request.param == "absolute" else None
        result = build_index(dists, root, base_url=base_url)
        assert result.ok
        yield server


def _installed_version(target: Path) -> str:
    (dist_info,) = target.glob("demo_pkg-*.dist-info")
    return dist_info.name.removeprefix("demo_pkg-").removesuffix(".dist-info")


def test_pip_installs(served: IndexServer, tmp_path: Path, requests: list[RequestRecord]) -> None:
    target = tmp_path / "target"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target),
         "--index-url", served.url, "demo-pkg"],
        env=clean_installer_env(tmp_path), check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    assert _installed_version(target) == "2.0"
    assert (target / "demo_pkg" / "__init__.py").read_text() == '__version__ = "2.0"\n'
    # pip read the PEP 658 metadata file before it took the wheel.
    assert served.wait_idle()
    paths = [record.path for record in requests if record.status == 200]
    wheel = "/files/demo_pkg-2.0-py3-none-any.whl"
    assert paths.index(wheel + ".metadata") < paths.index(wheel)


def test_pip_installs_from_an_html_only_index(dists: Path, tmp_path: Path) -> None:
    root = tmp_path / "public"
    build_index(dists, root)
    target = tmp_path / "target"
    with IndexServer(root, formats=("html",)) as server:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target),
             "--index-url", server.url, "Demo.Pkg==1.0"],
            env=clean_installer_env(tmp_path), check=True, capture_output=True, timeout=120,
        )  # fmt: skip
    assert _installed_version(target) == "1.0"


@pytest.mark.skipif(UV is None, reason="uv is not installed")
def test_uv_installs(served: IndexServer, tmp_path: Path) -> None:
    assert UV is not None
    target = tmp_path / "target"
    completed = subprocess.run(
        [UV, "pip", "install", "--no-deps", "--target", str(target), "--python", sys.executable,
         "--index-url", served.url, "--no-cache", "demo-pkg"],
        env=clean_installer_env(tmp_path), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert _installed_version(target) == "2.0"
