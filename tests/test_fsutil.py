"""atomic_write: whole files only, and the permissions an ordinary open() gives."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from torrip.fsutil import atomic_write, file_url_path


def test_writes_whole_file_with_umask_mode(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "report.json"
    atomic_write(target, b"{}", durable=True)
    assert target.read_bytes() == b"{}"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]


def test_failure_leaves_old_file_and_no_temp(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "page"
    target.write_bytes(b"old")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["page"]


def test_file_urls_are_unquoted_once() -> None:
    assert file_url_path("file:///srv/wheels/a%20b/x.whl") == Path("/srv/wheels/a b/x.whl")
    assert file_url_path("file:///srv/100%2541.whl") == Path("/srv/100%41.whl")
    assert file_url_path("https://example.org/x.whl") is None


def test_a_leftover_temporary_name_is_passed_over(tmp_path: Path) -> None:
    """A crashed process with this one's id may have left its temporary file: the next
    name is taken, and the leftover is not touched."""
    import torrip.fsutil as fsutil

    target = tmp_path / "page"
    upcoming = next(fsutil._count) + 1
    leftover = tmp_path / f".page.{os.getpid()}.{upcoming}.tmp"
    leftover.write_bytes(b"crashed")
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    assert leftover.read_bytes() == b"crashed"


def test_a_missing_folder_that_cannot_be_made_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(OSError):
        atomic_write(tmp_path / "file" / "sub" / "page", b"x")
