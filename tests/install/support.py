"""Helpers for install tests: package wheels, tree snapshots, crafted wheels."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from fixtures.wheels import make_wheel
from torrip.environment import TargetEnvironment
from torrip.install.transaction import WheelToInstall

Snapshot = dict[str, tuple[object, ...]]
MakeEnvironment = Callable[..., TargetEnvironment]


def package_wheel(
    directory: Path,
    name: str,
    version: str,
    *,
    extra_files: Mapping[str, bytes] | None = None,
    script: bool = True,
) -> Path:
    """A wheel with a package (two modules, a subpackage), a data file, a header and a script."""
    module = canonicalize_name(name).replace("-", "_")
    data = f"{module}-{Version(version)}.data"
    files = {
        f"{module}/__init__.py": (
            f'__version__ = "{version}"\n\ndef main():\n    print("{name} {version}")\n'
        ).encode(),
        f"{module}/core.py": f"VERSION = {version!r}\n".encode(),
        f"{module}/sub/__init__.py": b"",
        f"{module}/sub/only_in_{module}_{str(Version(version)).replace('.', '_')}.py": b"X = 1\n",
        f"{data}/data/share/{module}/notes.txt": f"{name} {version}\n".encode(),
        f"{data}/headers/{module}.h": b"int answer(void);\n",
        **(extra_files or {}),
    }
    entry_points = f"[console_scripts]\n{module}-cli = {module}:main\n" if script else None
    return make_wheel(directory, name, version, files=files, entry_points=entry_points)


def to_install(path: Path, *, requested: bool = True) -> WheelToInstall:
    name, version = path.name.split("-")[:2]
    return WheelToInstall(path, canonicalize_name(name), Version(version), requested)


def snapshot(root: Path) -> Snapshot:
    """Every path under ``root`` with its kind, mode and content hash (symlinks not followed)."""
    result: Snapshot = {}
    for directory, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(directory, name)
            info = path.lstat()
            relative = str(path.relative_to(root))
            if stat.S_ISLNK(info.st_mode):
                result[relative] = ("symlink", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                result[relative] = ("dir", stat.S_IMODE(info.st_mode))
            else:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                result[relative] = ("file", stat.S_IMODE(info.st_mode), digest)
    return result


def rewrite_wheel(
    path: Path,
    changes: Mapping[str, bytes | None],
    *,
    duplicate: str | None = None,
) -> Path:
    """Rewrite ``path`` with members replaced (None: removed) or added, RECORD left as it was."""
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    for member, data in changes.items():
        if data is None:
            members.pop(member, None)
        else:
            members[member] = data
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member, data in members.items():
            archive.writestr(member, data)
        if duplicate is not None:
            with pytest.warns(UserWarning, match="Duplicate name"):
                archive.writestr(duplicate, members[duplicate] + b"# the other one\n")
    return path


def make_executable(wheel: Path, member: str) -> Path:
    """Rewrite ``wheel`` with ``member`` marked executable in the zip (RECORD unchanged)."""
    with zipfile.ZipFile(wheel) as archive:
        members = [(info, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for info, data in members:
            if info.filename == member:
                info.external_attr = (stat.S_IFREG | 0o755) << 16
            archive.writestr(info, data)
    return wheel


def site_packages(environment: TargetEnvironment) -> Path:
    return Path(environment.scheme["purelib"])


def pip_install(python: Path, wheel: Path, *options: str) -> None:
    """Install ``wheel`` into ``python``'s environment with pip (from the test venv), offline."""
    pip = Path(sys.executable).parent / "pip"
    if not pip.exists():
        pytest.skip("pip is not installed next to the test interpreter")
    environ = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
    environ["PIP_CONFIG_FILE"] = os.devnull
    environ.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run(
        [pip, "--python", python, "install", "--no-deps", "--no-index",
         "--disable-pip-version-check", "-q", *options, wheel],
        check=True, env=environ, capture_output=True,
    )  # fmt: skip
