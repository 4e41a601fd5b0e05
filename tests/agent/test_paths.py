"""The agent's run folder: where it is, and that it is private and ours."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from torrip.agent.paths import agent_paths, check_socket_path, ensure_private_dir, run_dir
from torrip.config import Settings
from torrip.errors import TorripError


def test_runtime_dir_first(tmp_path: Path) -> None:
    assert run_dir({"XDG_RUNTIME_DIR": str(tmp_path)}) == tmp_path / "torrip"


def test_without_a_runtime_dir_a_per_user_folder(tmp_path: Path) -> None:
    for environ in ({}, {"XDG_RUNTIME_DIR": "relative/path"}, {"XDG_RUNTIME_DIR": "/nonexistent"}):
        folder = run_dir(environ)
        assert str(os.getuid()) in str(folder)


def test_state_lives_in_the_cache(tmp_path: Path) -> None:
    paths = agent_paths(Settings(cache_dir=tmp_path / "cache"), {"XDG_RUNTIME_DIR": str(tmp_path)})
    assert paths.state_file == tmp_path / "cache" / "agent-v1" / "state.json"
    assert paths.socket == tmp_path / "torrip" / "agent.sock"


def test_private_dir_is_created_0700_and_loose_modes_fixed(tmp_path: Path) -> None:
    folder = ensure_private_dir(tmp_path / "a" / "torrip")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    folder.chmod(0o755)
    ensure_private_dir(folder)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_a_symlink_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "torrip").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(TorripError, match="not a folder"):
        ensure_private_dir(tmp_path / "torrip")


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to make a folder of another user")
def test_another_users_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "torrip"
    folder.mkdir(mode=0o700)
    os.chown(folder, 65534, 65534)
    with pytest.raises(TorripError, match="another user"):
        ensure_private_dir(folder)


def test_socket_paths_too_long_for_unix_sockets_are_refused(tmp_path: Path) -> None:
    with pytest.raises(TorripError, match="too long"):
        check_socket_path(tmp_path / ("x" * 120) / "agent.sock")
    check_socket_path(Path("/tmp/torrip-0/agent.sock"))
