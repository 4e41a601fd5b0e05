"""Unsafe wheels are refused and the environment left as it was: paths, RECORD, ambiguous zips.

Everything is refused before the environment is touched: the archive checks before a wheel
is unpacked, a RECORD hash mismatch while it is unpacked (into the cache, not the environment).
"""

from __future__ import annotations

import struct
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from fixtures.environments import available_interpreters
from fixtures.wheels import make_wheel
from install.support import package_wheel, rewrite_wheel, snapshot, to_install
from torrip.environment import TargetEnvironment, inspect_environment
from torrip.errors import UnsafeWheelError
from torrip.install.safety import check_wheel, place_wheel, read_layout, verify_wheel
from torrip.install.transaction import install_transaction

_INIT = "evil/__init__.py"


def _traversal(member: str) -> Callable[[Path], Path]:
    return lambda directory: make_wheel(directory, "evil", "1.0", files={member: b"owned = 1\n"})


def _script(name: str) -> Callable[[Path], Path]:
    return lambda directory: make_wheel(
        directory, "evil", "1.0", entry_points=f"[console_scripts]\n{name} = evil:main\n"
    )


def _record_hash(directory: Path) -> Path:
    # Same size, other bytes: only the hash tells.
    return rewrite_wheel(make_wheel(directory, "evil", "1.0"), {_INIT: b'__version__ = "6.6"\n'})


def _record_size(directory: Path) -> Path:
    return rewrite_wheel(make_wheel(directory, "evil", "1.0"), {_INIT: b"import os  # more\n"})


def _not_in_record(directory: Path) -> Path:
    return rewrite_wheel(make_wheel(directory, "evil", "1.0"), {"evil/extra.py": b"x = 1\n"})


def _no_record(directory: Path) -> Path:
    wheel = make_wheel(directory, "evil", "1.0")
    return rewrite_wheel(wheel, {"evil-1.0.dist-info/RECORD": None})


def _md5_record(directory: Path) -> Path:
    wheel = make_wheel(directory, "evil", "1.0")
    with zipfile.ZipFile(wheel) as archive:
        record = archive.read("evil-1.0.dist-info/RECORD").decode()
    lines = [
        f"{line.split(',')[0]},md5=AAAA,{line.split(',')[2]}" if "sha256=" in line else line
        for line in record.splitlines()
    ]
    return rewrite_wheel(wheel, {"evil-1.0.dist-info/RECORD": "\n".join(lines).encode()})


def _duplicate(directory: Path) -> Path:
    return rewrite_wheel(make_wheel(directory, "evil", "1.0"), {}, duplicate=_INIT)


def _local_header_differs(directory: Path) -> Path:
    """The central directory says evil/__init__.py; the local header says ../../../evil.py."""
    wheel = make_wheel(directory, "evil", "1.0")
    with zipfile.ZipFile(wheel) as archive:
        offset = archive.getinfo(_INIT).header_offset
    data = bytearray(wheel.read_bytes())
    (name_length,) = struct.unpack_from("<H", data, offset + 26)
    assert data[offset + 30 : offset + 30 + name_length] == _INIT.encode()
    data[offset + 30 : offset + 30 + name_length] = b"../../../evil.py"
    wheel.write_bytes(bytes(data))
    return wheel


def _local_header_name_shorter(directory: Path) -> Path:
    """The local header's name length says 4: its name reads "evil", not evil/__init__.py."""
    wheel = make_wheel(directory, "evil", "1.0")
    with zipfile.ZipFile(wheel) as archive:
        offset = archive.getinfo(_INIT).header_offset
    data = bytearray(wheel.read_bytes())
    struct.pack_into("<H", data, offset + 26, 4)
    wheel.write_bytes(bytes(data))
    return wheel


def _wheel_version_2(directory: Path) -> Path:
    wheel = make_wheel(directory, "evil", "1.0")
    wheel_file = b"Wheel-Version: 2.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    return rewrite_wheel(wheel, {"evil-1.0.dist-info/WHEEL": wheel_file})


def _two_dist_infos(directory: Path) -> Path:
    wheel = make_wheel(directory, "evil", "1.0")
    return rewrite_wheel(wheel, {"other-1.0.dist-info/METADATA": b"Name: other\n"})


# (builder, the entry the error must name, words of the reason)
UNSAFE = {
    "parent-dir": (_traversal("../evil.py"), "../evil.py", "'..'"),
    "parent-dir-deep": (_traversal("evil/../../evil.py"), "evil/../../evil.py", "'..'"),
    "sibling-prefix": (
        _traversal("../site-packages-evil/evil.py"),
        "../site-packages-evil/evil.py",
        "'..'",
    ),
    "absolute": (_traversal("/tmp/torrip-evil.py"), "/tmp/torrip-evil.py", "absolute"),
    "drive": (_traversal("C:/evil.py"), "C:/evil.py", "absolute"),
    "backslash": (_traversal("evil\\..\\..\\evil.py"), "evil\\..\\..\\evil.py", "backslash"),
    "dot-component": (_traversal("evil/./x.py"), "evil/./x.py", "'.'"),
    "data-unknown-scheme": (
        _traversal("evil-1.0.data/etc/passwd"),
        "evil-1.0.data/etc/passwd",
        "not a scheme",
    ),
    "data-escape": (
        _traversal("evil-1.0.data/scripts/../../../evil"),
        "evil-1.0.data/scripts/../../../evil",
        "'..'",
    ),
    "script-slash": (_script("sub/tool"), "evil-1.0.dist-info/entry_points.txt", "script name"),
    "script-parent": (_script("../../evil"), "evil-1.0.dist-info/entry_points.txt", "script"),
    "record-hash": (_record_hash, _INIT, "sha256 does not match RECORD"),  # found unpacking
    "record-size": (_record_size, _INIT, "RECORD says"),
    "not-in-record": (_not_in_record, "evil/extra.py", "not listed in RECORD"),
    "no-record": (_no_record, "evil-1.0.dist-info/RECORD", "missing"),
    "md5-record": (_md5_record, _INIT, "not sha256 or stronger"),
    "duplicate-name": (_duplicate, _INIT, "same name"),
    "local-header-name": (_local_header_differs, _INIT, "local header names it"),
    "local-header-name-length": (_local_header_name_shorter, _INIT, "names it 'evil'"),
    "wheel-version": (_wheel_version_2, "evil-1.0.dist-info/WHEEL", "Wheel-Version"),
    "two-dist-infos": (_two_dist_infos, None, "one .dist-info"),
}


@pytest.fixture(scope="module")
def shared_environment(tmp_path_factory: pytest.TempPathFactory) -> TargetEnvironment:
    """One venv with a distribution installed, shared by the refusal tests (none may change it)."""
    venv = tmp_path_factory.mktemp("safety-venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    environment = inspect_environment(venv / "bin" / "python")
    old = package_wheel(tmp_path_factory.mktemp("old"), "evil", "0.9")
    install_transaction(environment, [to_install(old)], remove=[])
    return environment.refresh_installed()


@pytest.mark.parametrize("kind", list(UNSAFE))
def test_unsafe_wheel_is_refused_and_the_environment_untouched(
    kind: str, shared_environment: TargetEnvironment, tmp_path: Path
) -> None:
    build, entry, reason = UNSAFE[kind]
    wheel = build(tmp_path / "evil")
    good = package_wheel(tmp_path / "good", "good", "1.0")
    prefix = Path(shared_environment.prefix)
    before = snapshot(prefix)

    with pytest.raises(UnsafeWheelError) as refused:
        install_transaction(
            shared_environment,
            [to_install(good), to_install(wheel)],
            remove=list(shared_environment.installed.values()),
        )

    error = refused.value
    assert error.wheel == str(wheel)
    assert error.entry == entry
    assert reason in error.reason
    assert wheel.name in str(error) and (entry is None or repr(entry) in str(error))
    assert snapshot(prefix) == before
    assert not Path("/tmp/torrip-evil.py").exists()
    assert (
        not (prefix / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}")
        .joinpath("site-packages-evil")
        .exists()
    )


def test_a_good_wheel_passes_and_lists_what_it_writes(tmp_path: Path) -> None:
    scheme = {
        "purelib": tmp_path / "site",
        "platlib": tmp_path / "site",
        "headers": tmp_path / "include/good",
        "scripts": tmp_path / "bin",
        "data": tmp_path,
    }
    wheel = package_wheel(tmp_path, "good", "1.0")
    # A signature file need not be (and must not be) in RECORD.
    rewrite_wheel(wheel, {"good-1.0.dist-info/RECORD.jws": b"{}"})
    verified = verify_wheel(wheel, scheme)
    assert verified.name == "good"
    assert verified.root_scheme == "purelib"
    assert {
        str(tmp_path / "site/good/__init__.py"),
        str(tmp_path / "site/good-1.0.dist-info/RECORD"),
        str(tmp_path / "site/good-1.0.dist-info/INSTALLER"),
        str(tmp_path / "bin/good-cli"),
        str(tmp_path / "include/good/good.h"),
        str(tmp_path / "share/good/notes.txt"),
    } <= verified.destinations
    core = verified.expected[("purelib", "good/core.py")]
    assert core.digest.startswith("sha256=") and core.member == "good/core.py"


def test_placing_rechecks_every_path(tmp_path: Path) -> None:
    """A layout from elsewhere (an unpacked wheel's manifest) cannot leave the scheme either."""
    layout = read_layout(package_wheel(tmp_path, "good", "1.0"))
    scheme = {"purelib": tmp_path / "site", "platlib": tmp_path / "site", "data": tmp_path}
    scheme |= {"headers": tmp_path / "include", "scripts": tmp_path / "bin"}
    assert place_wheel(layout, scheme).targets[0] == str(tmp_path / "site/good/__init__.py")
    bad_paths = ("../evil.py", "/etc/evil.py", "good/../../evil.py", "good//evil.py")
    for bad in (*bad_paths, "good/./evil.py", "good/evil/", "..\\evil.py", "good/\x00.py"):
        escaping = layout.files[0]._replace(member=bad, path=bad)
        tampered = layout._replace(files=(escaping, *layout.files[1:]))
        with pytest.raises(UnsafeWheelError, match="would be written outside"):
            place_wheel(tampered, scheme)


def test_not_a_zip(tmp_path: Path) -> None:
    wheel = tmp_path / "broken-1.0-py3-none-any.whl"
    wheel.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(UnsafeWheelError, match="unreadable wheel"):
        check_wheel(wheel, {"purelib": tmp_path})


def _real_wheels() -> list[Path]:
    """The wheels CPython bundles for ensurepip: real PyPI wheels of pip and setuptools."""
    found: dict[str, Path] = {}
    candidates = sorted(Path("/usr/share/python-wheels").glob("*.whl"))
    for python in available_interpreters().values():
        candidates += sorted(python.parents[1].glob("lib/python3*/ensurepip/_bundled/*.whl"))
    for wheel in candidates:
        found.setdefault(wheel.name, wheel)
    return sorted(found.values())


@pytest.mark.parametrize("wheel", _real_wheels(), ids=lambda path: path.name)
def test_real_wheels_pass(wheel: Path, tmp_path: Path) -> None:
    scheme = {
        "purelib": tmp_path / "site",
        "platlib": tmp_path / "site",
        "headers": tmp_path / "include",
        "scripts": tmp_path / "bin",
        "data": tmp_path,
    }
    verified = verify_wheel(wheel, scheme)
    assert verified.destinations


_NAMES = [
    "pkg/__init__.py",
    "pkg/sub/",
    "pkg-1.0.dist-info/RECORD",
    ".hidden/x",
    "a/...",
    "..a/b",
    "a//b",
    "./a",
    "a/.",
    "a/..",
    "../x",
    "",
    "/",
    "/etc/passwd",
    "C:/x",
    "c:x",
    "a\\b",
    "a\x00b",
    "a\n..",
    "a\n/b",
    "\n",
    "x/\n/y",
    "dir/../",
    "ok/name-1.2.txt",
    "é/ü.py",
]


@pytest.mark.parametrize("name", _NAMES)
def test_names_checked_together_refuse_what_each_alone_refuses(name: str) -> None:
    """check_names searches all names at once, then goes one by one only where it finds
    something: a name among good ones is refused exactly when check_name refuses it."""
    from torrip.install.safety import _Verifier

    verifier = _Verifier(Path("demo-1.0-py3-none-any.whl"), None, None)  # type: ignore[arg-type]
    good = ["demo/__init__.py", "demo/data/", "demo-1.0.dist-info/METADATA"]
    try:
        verifier.check_name(name)
        alone = None
    except UnsafeWheelError as error:
        alone = str(error)
    try:
        verifier.check_names([*good[:2], name, good[2]])
        together = None
    except UnsafeWheelError as error:
        together = str(error)
    assert together == alone
    verifier.check_names(good)  # nothing to refuse
