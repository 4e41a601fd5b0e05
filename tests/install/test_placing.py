"""Placing many files on two cores: a forked process links its share, this one the rest;
whatever goes wrong on either side is raised here, after the fork has ended.

The fork is only made by a process with one thread, so each case runs in a fresh
interpreter (pytest's process may have server threads of other tests running).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from fixtures.wheels import make_wheel
from install.support import MakeEnvironment, site_packages, snapshot
from torrip.cache import UnpackedCache, sha256_of
from torrip.errors import InstallError
from torrip.install.placing import FORK_MIN_FILES, FORK_SHARE, Placement
from torrip.install.transaction import WheelToInstall, install_transaction
from torrip.install.unpacked import unpack_wheel

_FILES = FORK_MIN_FILES + 200
_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
_FORKS = sys.platform.startswith("linux") and _CORES >= 2

# Run in a fresh interpreter: makes the files, places them, and prints what happened.
_PLACE = """
import json, os, sys
from pathlib import Path
from torrip.install import placing

source, target = Path(sys.argv[1]), Path(sys.argv[2])
count, missing, existing, mute, batch = (int(value) for value in sys.argv[3:8])
files = []
for index in range(count):
    (source / f"f{index}").write_bytes(b"%d" % index)
    files.append((str(source / f"f{index}"), str(target / f"f{index}"), False))
if missing >= 0:
    os.unlink(files[missing][0])
if existing >= 0:
    Path(files[existing][1]).write_bytes(b"in the way")
forks = []
fork = os.fork
def counted_fork():
    forks.append(os.getpid())
    return fork()
placing.os.fork = counted_fork
if mute:  # the fork says nothing, as if it were killed
    placing.os.write = lambda descriptor, data: len(data)
outcome = {}
try:
    with placing.Placement("hardlink", total=count) as placement:
        for start in range(0, count, batch):
            placement.add(files[start : start + batch])
        outcome["linked"], outcome["copied"] = placement.finish()
except Exception as error:
    outcome["error"] = f"{type(error).__name__}: {error}"
try:
    os.waitpid(-1, os.WNOHANG)
    outcome["children_left"] = True
except ChildProcessError:
    outcome["children_left"] = False
outcome["forks"] = len([pid for pid in forks if pid == os.getpid()])
outcome["placed"] = sorted(
    int(name[1:]) for name in os.listdir(target)
    if os.path.samefile(target / name, source / name)
) if missing < 0 else None
print(json.dumps(outcome))
"""


def _place(
    tmp_path: Path,
    *,
    missing: int = -1,
    existing: int = -1,
    mute: bool = False,
    batch: int = 100,
) -> dict[str, object]:
    source, target = tmp_path / "tree", tmp_path / "site"
    source.mkdir()
    target.mkdir()
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(_PLACE),
            str(source),
            str(target),
            str(_FILES),
            str(missing),
            str(existing),
            str(int(mute)),
            str(batch),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    outcome: dict[str, object] = json.loads(completed.stdout)
    assert outcome["children_left"] is False  # the fork always ends before the result
    return outcome


@pytest.mark.parametrize("batch", [100, _FILES], ids=["wheels", "one-wheel"])
def test_the_files_handed_over_first_go_to_a_fork(tmp_path: Path, batch: int) -> None:
    """In batches (a wheel's files each) or in one (a single large wheel: the fork takes
    its first files, this process the others)."""
    outcome = _place(tmp_path, batch=batch)
    assert outcome["forks"] == (1 if _FORKS else 0)
    assert outcome["linked"] == _FILES and outcome["copied"] == 0
    assert outcome["placed"] == list(range(_FILES))  # every one a link to its source


def test_a_file_the_fork_cannot_place_fails_here_with_its_own_message(tmp_path: Path) -> None:
    outcome = _place(tmp_path, missing=10)  # in the fork's share (the first two thirds)
    assert outcome["forks"] == (1 if _FORKS else 0)
    assert "InstallError" in str(outcome["error"])
    assert "disappeared from torrip's unpacked cache" in str(outcome["error"])


@pytest.mark.parametrize("batch", [100, _FILES], ids=["wheels", "one-wheel"])
def test_a_file_in_the_way_of_this_process_stops_the_fork_first(tmp_path: Path, batch: int) -> None:
    outcome = _place(tmp_path, existing=_FILES - 5, batch=batch)  # in this process's share
    assert outcome["forks"] == (1 if _FORKS else 0)
    assert str(outcome["error"]).startswith("FileExistsError")


@pytest.mark.skipif(not _FORKS, reason="a fork is made on Linux with two cores only")
def test_a_fork_that_ends_without_a_word_fails_the_placement(tmp_path: Path) -> None:
    outcome = _place(tmp_path, mute=True)
    assert outcome["forks"] == 1
    assert "ended without saying what it did" in str(outcome["error"])


def test_few_files_are_placed_here(tmp_path: Path) -> None:
    source, target = tmp_path / "tree", tmp_path / "site"
    source.mkdir()
    target.mkdir()
    files = []
    for index in range(20):
        (source / f"f{index}").write_text(str(index))
        files.append((str(source / f"f{index}"), str(target / f"f{index}"), False))
    pid = os.getpid()
    with Placement("hardlink", total=len(files)) as placement:
        placement.add(files)
        assert os.getpid() == pid
        assert placement.finish() == (20, 0)
    assert all(os.path.samefile(source, target) for source, target, _ in files)


def _big_wheel(directory: Path, name: str) -> Path:
    files = {f"{name}/m{index // 100}/f{index}.py": b"X = %d\n" % index for index in range(_FILES)}
    files[f"{name}/__init__.py"] = b""
    return make_wheel(directory, name, "1.0", files=files)


def _from_cache(store: UnpackedCache, wheel: Path) -> WheelToInstall:
    name, version = wheel.name.split("-")[:2]
    return WheelToInstall(
        wheel,
        canonicalize_name(name),
        Version(version),
        requested=True,
        unpacked=unpack_wheel(store, wheel, sha256_of(wheel)),
    )


def test_a_big_install_links_every_file_and_rolls_back_a_failure(
    make_environment: MakeEnvironment, tmp_path: Path
) -> None:
    store = UnpackedCache(tmp_path / "cache")
    wheels = [_from_cache(store, _big_wheel(tmp_path / "wheels", name)) for name in ("aa", "bb")]
    environment = make_environment()
    result = install_transaction(environment, wheels, remove=[])
    files = sum(len(wheel.unpacked.layout.files) for wheel in wheels if wheel.unpacked)
    assert files > 2 * _FILES
    assert result.files_linked == files and result.files_copied == 0
    installed = site_packages(environment) / "bb/m3/f321.py"
    assert installed.read_bytes() == b"X = 321\n"
    assert wheels[1].unpacked is not None
    assert installed.samefile(wheels[1].unpacked.tree / "bb/m3/f321.py")

    # A file gone from the cache early on (a fork's share, where one is made): all undone.
    again = make_environment()
    before = snapshot(Path(again.prefix))
    assert wheels[0].unpacked is not None
    (wheels[0].unpacked.tree / "aa/m1/f123.py").unlink()
    assert int(files * FORK_SHARE) > _FILES  # the first wheel is the fork's
    with pytest.raises(InstallError, match="disappeared from torrip's unpacked cache"):
        install_transaction(again, wheels, remove=[])
    assert snapshot(Path(again.prefix)) == before
