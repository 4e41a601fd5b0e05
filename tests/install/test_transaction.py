"""install_transaction into real venvs: files, scripts, metadata, upgrades, rollback, pip parity."""

from __future__ import annotations

import base64
import csv
import errno
import hashlib
import io
import json
import os
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

import torrip.install.transaction as transaction
import torrip.install.wheel as wheel_module
from fixtures.environments import MakeVenv, available_interpreters
from fixtures.wheels import make_wheel
from install.support import (
    MakeEnvironment,
    make_executable,
    package_wheel,
    pip_install,
    rewrite_wheel,
    site_packages,
    snapshot,
    to_install,
)
from torrip.cache import UnpackedCache, sha256_of
from torrip.environment import TargetEnvironment
from torrip.errors import InstallError, UninstallError, UnsafeWheelError
from torrip.install.placing import LinkMode
from torrip.install.transaction import TransactionResult, install_transaction
from torrip.install.uninstall import uninstall
from torrip.install.unpacked import unpack_wheel
from torrip.install.wheel import install_wheel

_PYTHONS = available_interpreters()
_TARGETS = [version for version in ("3.8", f"{sys.version_info[0]}.{sys.version_info[1]}")]


def _run(python: Path, code: str) -> str:
    completed = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, check=True, cwd="/"
    )
    return completed.stdout.strip()


@pytest.mark.parametrize("version", _TARGETS)
def test_installs_into_venv_of_any_python(
    version: str, make_environment: MakeEnvironment, tmp_path: Path
) -> None:
    if version not in _PYTHONS:
        pytest.skip(f"no Python {version} here")
    environment = make_environment(_PYTHONS[version])
    wheel = package_wheel(tmp_path, "alpha", "1.0")

    result = install_transaction(environment, [to_install(wheel)], remove=[])

    assert isinstance(result, TransactionResult)
    assert result.installed == (("alpha", "1.0"),)
    assert result.removed == ()
    python = environment.python
    assert _run(python, "import alpha, alpha.sub; print(alpha.__version__)") == "1.0"
    script = Path(environment.scheme["scripts"]) / "alpha-cli"
    assert script.read_text().splitlines()[0] == f"#!{python}"
    assert os.access(script, os.X_OK)
    assert subprocess.run([script], capture_output=True, text=True).stdout == "alpha 1.0\n"
    dist_info = site_packages(environment) / "alpha-1.0.dist-info"
    assert (dist_info / "INSTALLER").read_text() == "torrip\n"
    assert (dist_info / "REQUESTED").exists()
    assert not (dist_info / "direct_url.json").exists()
    headers = Path(environment.scheme["headers"]) / "alpha" / "alpha.h"
    assert headers.read_text() == "int answer(void);\n"
    assert (Path(environment.prefix) / "share/alpha/notes.txt").read_text() == "alpha 1.0\n"
    # No bytecode unless asked for.
    assert not list(site_packages(environment).rglob("*.pyc"))
    installed = environment.refresh_installed().installed["alpha"]
    assert (installed.installer, installed.requested) == ("torrip", True)


def test_dependency_without_requested_and_direct_url(
    environment: TargetEnvironment, tmp_path: Path
) -> None:
    wheel = to_install(package_wheel(tmp_path, "beta", "2.0"), requested=False)
    direct_url = {"url": wheel.path.as_uri(), "archive_info": {}}
    wheel = transaction.WheelToInstall(
        wheel.path, wheel.name, wheel.version, False, direct_url=direct_url
    )
    install_transaction(environment, [wheel], remove=[])
    dist_info = site_packages(environment) / "beta-2.0.dist-info"
    assert not (dist_info / "REQUESTED").exists()
    assert json.loads((dist_info / "direct_url.json").read_text()) == direct_url
    record = (dist_info / "RECORD").read_text()
    assert "beta-2.0.dist-info/direct_url.json,sha256=" in record


@pytest.mark.skipif("3.8" not in _PYTHONS, reason="no Python 3.8 here")
def test_compile_uses_the_target_interpreter(
    make_environment: MakeEnvironment, tmp_path: Path
) -> None:
    environment = make_environment(_PYTHONS["3.8"])
    wheel = package_wheel(
        tmp_path, "gamma", "1.0", extra_files={"gamma/py2_template.py": b"print 'hi'\n"}
    )
    install_transaction(environment, [to_install(wheel)], remove=[], compile=True)

    package = site_packages(environment) / "gamma"
    compiled = sorted(path.name for path in package.rglob("*.pyc"))
    assert compiled == [
        "__init__.cpython-38.pyc",
        "__init__.cpython-38.pyc",
        "core.cpython-38.pyc",
        "only_in_gamma_1_0.cpython-38.pyc",
    ]  # py2_template.py does not compile: skipped, as pip does
    record = (site_packages(environment) / "gamma-1.0.dist-info/RECORD").read_text()
    assert "gamma/__pycache__/core.cpython-38.pyc,sha256=" in record
    # The target imports from the bytecode torrip wrote (same magic number).
    assert _run(environment.python, "import gamma.core; print(gamma.core.__cached__)").endswith(
        "core.cpython-38.pyc"
    )


def test_upgrade_removes_the_old_version(environment: TargetEnvironment, tmp_path: Path) -> None:
    old = package_wheel(tmp_path / "old", "delta", "1.0")
    new = package_wheel(tmp_path / "new", "delta", "2.0")
    install_transaction(environment, [to_install(old)], remove=[], compile=True)
    site = site_packages(environment)
    assert (site / "delta/sub/only_in_delta_1_0.py").exists()
    installed = environment.refresh_installed()

    result = install_transaction(
        installed, [to_install(new)], remove=[installed.installed["delta"]]
    )

    assert result.removed == (("delta", "1.0"),)
    assert not (site / "delta-1.0.dist-info").exists()
    assert not (site / "delta/sub/only_in_delta_1_0.py").exists()
    assert (site / "delta/sub/only_in_delta_2_0.py").exists()
    assert not list(site.rglob("*.pyc"))  # the old bytecode went with the old version
    assert [path.name for path in site.iterdir() if path.name.startswith(".torrip")] == []
    assert _run(environment.python, "import delta; print(delta.__version__)") == "2.0"


def test_reinstall_and_name_clash_remove_what_is_installed(
    environment: TargetEnvironment, tmp_path: Path
) -> None:
    wheel = package_wheel(tmp_path, "epsilon", "1.0")
    install_transaction(environment, [to_install(wheel)], remove=[])
    before = snapshot(Path(environment.prefix))
    # remove=[] from a stale plan: the installed epsilon is still removed first.
    result = install_transaction(environment, [to_install(wheel)], remove=[])
    assert result.removed == (("epsilon", "1.0"),)
    assert snapshot(Path(environment.prefix)) == before


def test_signature_files_are_installed_though_not_in_record(
    environment: TargetEnvironment, tmp_path: Path
) -> None:
    wheel = rewrite_wheel(
        package_wheel(tmp_path, "signed", "1.0"), {"signed-1.0.dist-info/RECORD.jws": b"{}"}
    )
    install_transaction(environment, [to_install(wheel)], remove=[])
    assert (site_packages(environment) / "signed-1.0.dist-info/RECORD.jws").read_bytes() == b"{}"


def test_overwrites_a_file_of_another_distribution_like_pip(
    environment: TargetEnvironment, tmp_path: Path
) -> None:
    shared = {"shared_ns/__init__.py": b"# from one\n"}
    one = make_wheel(tmp_path, "one", "1.0", files=shared)
    other = make_wheel(tmp_path, "other", "1.0", files={"shared_ns/__init__.py": b"# other\n"})
    install_transaction(environment, [to_install(one)], remove=[])
    install_transaction(environment, [to_install(other)], remove=[])
    assert (site_packages(environment) / "shared_ns/__init__.py").read_bytes() == b"# other\n"


@pytest.mark.parametrize(("big", "threaded"), [(True, True), (False, False)], ids=["big", "small"])
def test_threads_only_for_large_files(
    big: bool,
    threaded: bool,
    environment: TargetEnvironment,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wheels = []
    for name in ("t1", "t2"):
        files = {f"{name}/x.py": b""}
        if big:
            files[f"{name}/blob.bin"] = os.urandom(1 << 20)
        wheels.append(to_install(make_wheel(tmp_path, name, "1.0", files=files)))
    threads = []

    def recording_install(*args, **kwargs):  # type: ignore[no-untyped-def]
        threads.append(threading.get_ident())
        return install_wheel(*args, **kwargs)

    monkeypatch.setattr(transaction, "install_wheel", recording_install)
    install_transaction(environment, wheels, remove=[], link_mode="copy")
    assert (threading.get_ident() not in threads) == threaded


# -- rollback --------------------------------------------------------------------------------


def _four_wheels(directory: Path) -> list[Path]:
    return [package_wheel(directory, name, "2.0") for name in ("w1", "w2", "w3", "w4")]


def _installed_base(environment: TargetEnvironment, directory: Path) -> TargetEnvironment:
    """An environment with old versions of two of the four wheels, and an unrelated one."""
    old = [package_wheel(directory, name, "1.0") for name in ("w1", "w3", "keep")]
    install_transaction(environment, [to_install(path) for path in old], remove=[], compile=True)
    return environment.refresh_installed()


@pytest.mark.parametrize("parallel", [True, False], ids=["parallel", "sequential"])
def test_failure_midway_restores_the_environment_byte_for_byte(
    parallel: bool, environment: TargetEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = _installed_base(environment, tmp_path / "old")
    before = snapshot(Path(environment.prefix))
    wheels = [to_install(path) for path in _four_wheels(tmp_path / "new")]
    # These files are small, and linked: without this, "parallel" would install them in
    # one thread.
    monkeypatch.setattr(transaction, "_MIN_AVERAGE_FILE_SIZE_FOR_THREADS", 0)
    monkeypatch.setattr(transaction, "_links_expected", lambda *_: False)

    calls = []

    def failing_install(verified, *args, **kwargs):  # type: ignore[no-untyped-def]
        installed = install_wheel(verified, *args, **kwargs)  # written in full, then fail
        calls.append(verified.name)
        if verified.name == "w3":
            raise OSError(28, "No space left on device")
        return installed

    monkeypatch.setattr(transaction, "install_wheel", failing_install)
    with pytest.raises(InstallError, match=r"installing w3-2\.0-py3-none-any\.whl failed"):
        install_transaction(
            environment,
            wheels,
            remove=[environment.installed["w1"], environment.installed["w3"]],
            compile=True,
            parallel=parallel,
        )
    assert "w3" in calls
    assert snapshot(Path(environment.prefix)) == before


def test_a_directory_in_the_way_fails_midway_and_rolls_back(
    environment: TargetEnvironment, tmp_path: Path
) -> None:
    environment = _installed_base(environment, tmp_path / "old")
    before = snapshot(Path(environment.prefix))
    wheels = _four_wheels(tmp_path / "new")
    # The 4th wheel ships a *file* where the 1st installs the package directory w1/.
    wheels[3] = make_wheel(tmp_path / "clash", "w4", "2.0", files={"w1": b"not a package\n"})
    with pytest.raises(InstallError, match="is in the way"):
        install_transaction(environment, [to_install(path) for path in wheels], remove=[])
    assert snapshot(Path(environment.prefix)) == before


def test_refused_wheel_touches_nothing(environment: TargetEnvironment, tmp_path: Path) -> None:
    environment = _installed_base(environment, tmp_path / "old")
    before = snapshot(Path(environment.prefix))
    wheels = _four_wheels(tmp_path / "new")
    wheels[2] = make_wheel(tmp_path / "evil", "w3", "2.0", files={"../../../../evil.py": b"x"})
    with pytest.raises(UnsafeWheelError, match=r"w3-2\.0-py3-none-any\.whl"):
        install_transaction(environment, [to_install(path) for path in wheels], remove=[])
    assert snapshot(Path(environment.prefix)) == before


def test_refused_uninstall_touches_nothing(environment: TargetEnvironment, tmp_path: Path) -> None:
    environment = _installed_base(environment, tmp_path / "old")
    record = site_packages(environment) / "w3-1.0.dist-info/RECORD"
    record.write_text(record.read_text() + "../../../../../../etc/hostname,,\n")
    before = snapshot(Path(environment.prefix))
    wheels = [to_install(path) for path in _four_wheels(tmp_path / "new")]
    with pytest.raises(UninstallError, match="etc/hostname"):
        install_transaction(environment, wheels, remove=[])
    assert snapshot(Path(environment.prefix)) == before
    assert Path("/etc/hostname").exists()


def test_interrupt_rolls_back(
    environment: TargetEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = _installed_base(environment, tmp_path / "old")
    before = snapshot(Path(environment.prefix))

    def interrupted(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    monkeypatch.setattr(transaction, "compile_bytecode", interrupted)
    wheels = [to_install(path) for path in _four_wheels(tmp_path / "new")]
    with pytest.raises(KeyboardInterrupt):
        install_transaction(environment, wheels, remove=[], compile=True)
    assert snapshot(Path(environment.prefix)) == before


# -- parity with pip -------------------------------------------------------------------------

_IGNORED = {"INSTALLER", "RECORD", "REQUESTED", "direct_url.json"}


def _installed_files(prefix: Path) -> set[str]:
    files = set()
    for path in prefix.rglob("*"):
        relative = path.relative_to(prefix)
        if "__pycache__" in relative.parts or path.name in _IGNORED or path.is_dir():
            continue
        files.add(str(relative))
    return files


def test_same_files_as_pip(
    make_venv: MakeVenv, make_environment: MakeEnvironment, tmp_path: Path
) -> None:
    wheel = package_wheel(
        tmp_path,
        "Parity.Pkg",
        "1.0",
        extra_files={"parity_pkg-1.0.data/scripts/raw-script": b"#!python\nprint('raw')\n"},
    )
    ours = make_environment()
    install_transaction(ours, [to_install(wheel)], remove=[])
    theirs = make_venv()
    pip_install(theirs / "bin/python", wheel, "--no-compile")
    assert _installed_files(Path(ours.prefix)) == _installed_files(theirs)
    assert (Path(ours.prefix) / "bin/raw-script").read_text() == f"#!{ours.python}\nprint('raw')\n"


# -- links from the unpacked cache -----------------------------------------------------------


def _from_cache(store: UnpackedCache, wheel: Path) -> transaction.WheelToInstall:
    return to_install(wheel)._replace(unpacked=unpack_wheel(store, wheel, sha256_of(wheel)))


def _record_rows(text: str) -> dict[str, tuple[str, str]]:
    return {row[0]: (row[1], row[2]) for row in csv.reader(text.splitlines()) if row}


def test_files_are_links_into_the_cache_which_no_step_changes(
    environment: TargetEnvironment, tmp_path: Path
) -> None:
    store = UnpackedCache(tmp_path / "cache")
    old = package_wheel(
        tmp_path / "old",
        "linked",
        "1.0",
        extra_files={"linked-1.0.data/scripts/raw": b"#!python\nprint('raw')\n"},
    )
    wheel = _from_cache(store, old)
    assert wheel.unpacked is not None
    tree = wheel.unpacked.tree
    cache_before = snapshot(store.store)

    result = install_transaction(environment, [wheel], remove=[], compile=True)

    site = site_packages(environment)
    core = site / "linked/core.py"
    assert core.stat().st_ino == (tree / "linked/core.py").stat().st_ino
    assert result.installed == (("linked", "1.0"),)
    not_scripts = [f for f in wheel.unpacked.layout.files if f.scheme != "scripts"]
    assert (result.files_linked, result.files_copied) == (len(not_scripts), 0)
    # What names the target is written, not linked: launchers, #!python scripts, metadata.
    scripts = Path(environment.scheme["scripts"])
    dist_info = site / "linked-1.0.dist-info"
    for generated in (scripts / "linked-cli", scripts / "raw", dist_info / "RECORD"):
        assert generated.stat().st_nlink == 1, generated
    assert (scripts / "raw").read_text() == f"#!{environment.python}\nprint('raw')\n"
    # RECORD lists each file of the wheel with the hash its own RECORD gave it.
    with zipfile.ZipFile(old) as archive:
        theirs = _record_rows(archive.read("linked-1.0.dist-info/RECORD").decode())
    ours = _record_rows((dist_info / "RECORD").read_text())
    for path in ("linked/core.py", "linked/__init__.py", "linked-1.0.dist-info/METADATA"):
        assert ours[path] == theirs[path]
    assert snapshot(store.store) == cache_before  # compiling wrote .pyc files beside, not in

    # Upgrade (the old version goes), a failed install (rolled back), then uninstall.
    installed = environment.refresh_installed()
    new = _from_cache(store, package_wheel(tmp_path / "new", "linked", "2.0"))
    broken = make_wheel(tmp_path / "clash", "clash", "1.0", files={"linked": b"a file\n"})
    clash = _from_cache(store, broken)
    cache_before = snapshot(store.store)
    install_transaction(installed, [new], remove=[installed.installed["linked"]])
    installed = environment.refresh_installed()
    before = snapshot(Path(environment.prefix))
    with pytest.raises(InstallError, match="is in the way"):
        install_transaction(installed, [clash], remove=[])
    assert snapshot(Path(environment.prefix)) == before
    uninstall(installed, ["linked"])
    assert not (site / "linked").exists()
    assert snapshot(store.store) == cache_before


def test_an_edit_through_a_link_does_not_spread(
    make_environment: MakeEnvironment, tmp_path: Path
) -> None:
    store = UnpackedCache(tmp_path / "cache")
    wheel = package_wheel(tmp_path, "edited", "1.0")
    first, second = make_environment(), make_environment()
    install_transaction(first, [_from_cache(store, wheel)], remove=[])
    with (site_packages(first) / "edited/core.py").open("ab") as file:  # in place: the inode
        file.write(b"EDITED = True\n")

    install_transaction(second, [_from_cache(store, wheel)], remove=[])

    core = site_packages(second) / "edited/core.py"
    assert core.read_bytes() == b"VERSION = '1.0'\n"
    record = _record_rows((site_packages(second) / "edited-1.0.dist-info/RECORD").read_text())
    digest = base64.urlsafe_b64encode(hashlib.sha256(core.read_bytes()).digest())
    assert record["edited/core.py"][0] == "sha256=" + digest.rstrip(b"=").decode()


@pytest.mark.parametrize("how", ["copy-mode", "other-file-system"])
def test_copies_when_asked_or_when_links_fail(
    how: str,
    make_environment: MakeEnvironment,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wheel = package_wheel(
        tmp_path,
        "copied",
        "1.0",
        extra_files={"copied/tool.sh": b"#!/bin/sh\necho hi\n"},
    )
    wheel = make_executable(wheel, "copied/tool.sh")
    store = UnpackedCache(tmp_path / "cache")
    linked, copied = make_environment(), make_environment()
    install_transaction(linked, [_from_cache(store, wheel)], remove=[])
    link_mode: LinkMode = "hardlink"
    if how == "copy-mode":
        link_mode = "copy"
    else:

        def cross_device(source: str, target: str) -> None:
            raise OSError(errno.EXDEV, "Invalid cross-device link")

        monkeypatch.setattr(wheel_module.os, "link", cross_device)
    result = install_transaction(
        copied, [_from_cache(store, wheel)], remove=[], link_mode=link_mode
    )
    assert result.files_linked == 0 and result.files_copied > 0

    tree = store.entry_dir(sha256_of(wheel)) / "tree"
    tool = site_packages(copied) / "copied/tool.sh"
    assert tool.stat().st_ino != (tree / "copied/tool.sh").stat().st_ino
    assert tool.stat().st_nlink == 1
    assert os.access(tool, os.X_OK)
    # The same files, bytes and modes as the linked install (RECORD lists the launcher,
    # whose shebang names each venv's own interpreter).
    record = "copied-1.0.dist-info/RECORD"
    ours, theirs = snapshot(site_packages(copied)), snapshot(site_packages(linked))
    assert ours.pop(record)[:2] == theirs.pop(record)[:2]
    assert ours == theirs


def test_a_file_gone_from_the_cache_fails_and_rolls_back(
    environment: TargetEnvironment, tmp_path: Path
) -> None:
    environment = _installed_base(environment, tmp_path / "old")
    before = snapshot(Path(environment.prefix))
    store = UnpackedCache(tmp_path / "cache")
    wheels = [_from_cache(store, path) for path in _four_wheels(tmp_path / "new")]
    assert wheels[2].unpacked is not None
    (wheels[2].unpacked.tree / "w3/core.py").unlink()  # say, torrip cache clean meanwhile
    with pytest.raises(InstallError, match="disappeared from torrip's unpacked cache"):
        install_transaction(environment, wheels, remove=[], parallel=False)
    assert snapshot(Path(environment.prefix)) == before


# -- real wheels from PyPI -------------------------------------------------------------------


def _bundled_pip() -> Path | None:
    """pip's own wheel, as bundled with CPython's ensurepip (a real PyPI wheel)."""
    python = _PYTHONS.get("3.8")
    if python is None:
        return None
    found = sorted(python.parents[1].glob("lib/python3.8/ensurepip/_bundled/pip-*.whl"))
    return found[-1] if found else None


@pytest.mark.skipif(_bundled_pip() is None, reason="no Python 3.8 with a bundled pip wheel")
def test_installs_pips_real_wheel_into_python_3_8(
    make_environment: MakeEnvironment, tmp_path: Path
) -> None:
    wheel = _bundled_pip()
    assert wheel is not None
    environment = make_environment(_PYTHONS["3.8"])
    install_transaction(environment, [to_install(wheel)], remove=[])
    pip = Path(environment.scheme["scripts"]) / "pip"
    assert pip.read_text().startswith(f"#!{environment.python}\n")
    completed = subprocess.run([pip, "--version"], capture_output=True, text=True, check=True)
    assert "(python 3.8)" in completed.stdout


def test_hard_links_go_in_one_thread_whatever_the_sizes(
    environment: TargetEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache and the environment on one file system: the files are hard-linked, and
    more threads would only contend for the GIL between one link and the next."""
    wheels = [
        make_wheel(tmp_path, name, "1.0", files={f"{name}/blob.bin": os.urandom(1 << 20)})
        for name in ("t1", "t2")
    ]
    threads = []
    real = transaction.install_wheel

    def recording_install(*args, **kwargs):  # type: ignore[no-untyped-def]
        threads.append(threading.get_ident())
        return real(*args, **kwargs)

    monkeypatch.setattr(transaction, "install_wheel", recording_install)
    result = install_transaction(environment, [to_install(path) for path in wheels], remove=[])
    assert threads == [threading.get_ident()] * 2
    assert result.files_linked > 0 and result.files_copied == 0


def test_record_text_is_what_the_csv_module_writes() -> None:
    """RECORD rows are joined directly unless a field needs quoting; either way the text is
    exactly the csv module's."""
    rows = [
        ("pkg/__init__.py", "sha256=abc_-DEF", "12"),
        ("pkg-1.0.dist-info/RECORD", "", ""),
        ("pkg/a,b.py", "sha256=x", "3"),
        ('pkg/say "hi".txt', "sha256=y", "4"),
        ("pkg/line\nbreak", "sha256=z", "5"),
        ("pkg/carriage\rreturn", "sha256=w", "6"),
        ("pkg/ space .py", "sha256=v", "0"),
    ]
    for some in (rows, rows[:2]):  # with fields to quote, and without
        buffer = io.StringIO()
        csv.writer(buffer, delimiter=",", quotechar='"', lineterminator="\n").writerows(some)
        assert wheel_module._record_text([(row[0], *row) for row in some]) == buffer.getvalue()
