"""Kept descriptions of target interpreters: the same facts as a fresh probe, the installed
distributions always read afresh, and a fresh probe whenever something it depends on
changed. A wrapper script around a real venv's interpreter counts how often it runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from fixtures.environments import _create
from torrip import environment
from torrip.environment import Probe, inspect_environment
from torrip.interpreters import _generic_text

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="shell scripts as interpreters")


class Counted:
    """``bin/python`` of a venv, behind a script that notes each run."""

    def __init__(self, root: Path) -> None:
        self.venv = _create(root / "venv", sys.executable)
        self.runs = root / "runs"
        self.python = self.venv / "bin" / "counted"
        self.write_script()
        self.cache = root / "cache"

    def write_script(self, extra: str = "") -> None:
        self.python.write_text(
            f'#!/bin/sh\necho run >> "{self.runs}"\n{extra}'
            f'exec "{self.venv / "bin" / "python"}" "$@"\n'
        )
        self.python.chmod(0o755)

    @property
    def count(self) -> int:
        return len(self.runs.read_text().splitlines()) if self.runs.exists() else 0

    @property
    def site(self) -> Path:
        return next((self.venv / "lib").glob("python*/site-packages"))

    def inspect(self):
        return inspect_environment(self.python, cache_dir=self.cache)


@pytest.fixture
def counted(tmp_path: Path) -> Counted:
    return Counted(tmp_path)


def test_a_kept_description_is_what_the_interpreter_says(counted: Counted) -> None:
    fresh = inspect_environment(counted.python)
    assert counted.count == 1
    first = counted.inspect()
    again = counted.inspect()
    assert counted.count == 2  # the first with a cache asked; the next did not
    assert first == fresh and again == fresh
    assert again.tags == fresh.tags and again.scheme == fresh.scheme
    assert again.listing == fresh.listing


def test_what_is_installed_is_read_every_time(counted: Counted) -> None:
    assert counted.inspect().installed == {}
    dist_info = counted.site / "demo-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n")
    (dist_info / "INSTALLER").write_text("torrip\n")
    kept = counted.inspect()
    assert counted.count == 1
    assert str(kept.installed["demo"].version) == "1.0"
    assert kept.installed == inspect_environment(counted.python).installed


@pytest.mark.parametrize(
    "change",
    ["pth", "interpreter", "pyvenv", "variable", "folder"],
)
def test_a_change_it_depends_on_asks_the_interpreter_again(
    change: str, counted: Counted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counted.inspect()
    counted.inspect()
    assert counted.count == 1
    time.sleep(0.01)  # a new mtime, on file systems with coarse ones
    if change == "pth":  # it may add a folder to sys.path
        extra = tmp_path / "extra"
        extra.mkdir()
        (counted.site / "extra.pth").write_text(f"{extra}\n")
    elif change == "interpreter":
        counted.write_script(extra=": upgraded\n")
    elif change == "pyvenv":
        config = counted.venv / "pyvenv.cfg"
        config.write_text(config.read_text() + "# edited\n")
    elif change == "variable":
        monkeypatch.setenv("PYTHONNOUSERSITE", "1")
    else:
        other = tmp_path / "elsewhere"
        other.mkdir()
        monkeypatch.chdir(other)
    after = counted.inspect()
    assert counted.count == 2
    if change == "pth":
        assert tmp_path / "extra" in after.site_packages
    assert counted.inspect() == after
    assert counted.count == 2  # and kept again


def test_without_a_cache_it_always_asks(counted: Counted) -> None:
    inspect_environment(counted.python)
    inspect_environment(counted.python)
    assert counted.count == 2
    assert not counted.cache.exists()


def test_a_damaged_kept_description_is_asked_again(counted: Counted) -> None:
    counted.inspect()
    (kept,) = (counted.cache / "interpreters-v1").iterdir()
    kept.write_text("{not json")
    assert counted.inspect() == inspect_environment(counted.python)
    assert counted.count == 3


def test_a_venv_made_again_in_the_same_place_is_the_same(counted: Counted) -> None:
    """As a benchmark or a CI job makes a fresh venv at one path every time."""
    counted.inspect()
    config = counted.venv / "pyvenv.cfg"
    before = config.stat()
    time.sleep(0.01)
    config.unlink()
    _create(counted.venv, sys.executable)  # again, over it (the wrapper stays)
    assert config.stat().st_mtime_ns != before.st_mtime_ns
    assert counted.inspect() == inspect_environment(counted.python)
    assert counted.count == 2  # the second is the uncached inspect_environment


def test_the_installed_only_probe_is_never_kept(counted: Counted) -> None:
    with Probe(counted.python, installed_only=True, cache_dir=counted.cache) as probe:
        assert "tag_facts" not in probe.facts()
    assert not (counted.cache / "interpreters-v1").exists()
    assert os.listdir(counted.venv)  # the venv is untouched


def test_a_user_site_made_since_joins_the_path(
    make_system_python, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside a venv the user site is on the path once it exists: a first --user install
    makes it, and what it installed there must be seen."""
    python = make_system_python()
    base = tmp_path / "userbase"
    monkeypatch.setenv("PYTHONUSERBASE", str(base))
    cache = tmp_path / "cache"
    before = inspect_environment(python, cache_dir=cache)
    assert before.installed == {}
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    dist_info = base / "lib" / version / "site-packages" / "demo-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n")
    after = inspect_environment(python, cache_dir=cache)
    assert "demo" in after.installed
    assert after == inspect_environment(python)


class _Spy:
    """Counts the interpreters torrip runs (the real ones run)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.runs = 0
        real = subprocess.Popen

        def counted(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
            self.runs += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(environment.subprocess, "Popen", counted)


def test_a_venv_made_the_same_way_elsewhere_is_described_without_running_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each CI job, tox env or benchmark run makes a fresh venv in a new folder."""
    first = _create(tmp_path / "one" / "venv", sys.executable)
    second = _create(tmp_path / "two" / "env", sys.executable)
    third = tmp_path / "three"  # made another way: it sees the system's site-packages
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", third],
        check=True,
    )
    fresh = {venv: inspect_environment(venv / "bin" / "python") for venv in (second, third)}
    spy = _Spy(monkeypatch)  # from here on, counts the interpreters run
    cache = tmp_path / "cache"
    inspect_environment(first / "bin" / "python", cache_dir=cache)
    assert spy.runs == 1
    kept = inspect_environment(second / "bin" / "python", cache_dir=cache)
    assert spy.runs == 1
    assert kept == fresh[second]
    assert kept.prefix == second and kept.scheme == fresh[second].scheme
    assert str(first) not in repr(kept)
    other = inspect_environment(third / "bin" / "python", cache_dir=cache)
    assert spy.runs == 2
    assert other == fresh[third]


def test_a_folder_that_shows_inside_other_text_cannot_be_a_template() -> None:
    assert _generic_text('{"a": "/x/venv", "b": "/x/venv/bin"}', "/x/venv") == (
        '{"a": "@torrip-venv@", "b": "@torrip-venv@/bin"}'
    )
    assert _generic_text('{"a": "/x/venv/bin", "b": "/x/venv2"}', "/x/venv") is None
