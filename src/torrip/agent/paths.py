"""Where the agent lives: a private run folder per user, a state folder per cache.

    paths = agent_paths(settings)
    paths.socket        # <run>/agent.sock: the control socket
    paths.pid_file      # <run>/agent.pid
    paths.lock_file     # <run>/agent.lock: held (flock) by the running agent
    paths.state_file    # <cache>/agent-v1/state.json
    paths.log_file      # <cache>/agent-v1/agent.log

The run folder is ``$XDG_RUNTIME_DIR/torrip``; without XDG_RUNTIME_DIR,
``/run/user/<uid>/torrip`` when that exists, else ``<tmp>/torrip-<uid>``. It is
created 0700 and must be a real folder owned by this user: anything else (a
symlink, another owner, looser modes it cannot fix) is refused, because whoever
controls it could put a socket of theirs where torrip looks for the agent.

The state lives next to what it describes, the cache, so it survives reboots and
two caches never share one.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from torrip.config import Settings
from torrip.errors import TorripError
from torrip.rundir import MAX_SOCKET_PATH
from torrip.rundir import run_dir as run_dir_of_user

__all__ = [
    "MAX_SOCKET_PATH",
    "STATE_AREA",
    "AgentPaths",
    "agent_paths",
    "check_socket_path",
    "ensure_private_dir",
    "run_dir",
]

STATE_AREA = "agent-v1"


@dataclass(frozen=True)
class AgentPaths:
    run: Path
    state: Path

    @property
    def socket(self) -> Path:
        return self.run / "agent.sock"

    @property
    def pid_file(self) -> Path:
        return self.run / "agent.pid"

    @property
    def lock_file(self) -> Path:
        return self.run / "agent.lock"

    @property
    def state_file(self) -> Path:
        return self.state / "state.json"

    @property
    def state_lock(self) -> Path:
        """Held by the agent serving this cache: two agents never share one state."""
        return self.state / "agent.lock"

    @property
    def log_file(self) -> Path:
        return self.state / "agent.log"


def run_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The agent's run folder for this user (not created here)."""
    env = os.environ if environ is None else environ
    if sys.platform == "win32":
        raise TorripError(
            "the seeding agent needs Unix sockets, which torrip does not use on Windows",
            hint="Installs work without it; files are not seeded after an install.",
        )
    return Path(run_dir_of_user(env))


def agent_paths(settings: Settings, environ: Mapping[str, str] | None = None) -> AgentPaths:
    return AgentPaths(run=run_dir(environ), state=Path(settings.cache_dir) / STATE_AREA)


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` 0700 (parents as needed) and check it is ours and private."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir(mode=0o700, exist_ok=True)
        info = os.lstat(path)
    except OSError as error:
        raise TorripError(
            f"cannot create the agent's folder {path}: {error.strerror or error}",
            hint="Set XDG_RUNTIME_DIR to a folder you own.",
        ) from None
    if not stat.S_ISDIR(info.st_mode):
        raise TorripError(
            f"{path} is not a folder (a symlink or a file is in the way)",
            hint="Remove it; torrip creates its own private folder there.",
        )
    if info.st_uid != os.getuid():
        raise TorripError(
            f"{path} belongs to another user (uid {info.st_uid})",
            hint="Someone else created it; set XDG_RUNTIME_DIR to a folder you own.",
        )
    if stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(path, 0o700)
    return path


def check_socket_path(path: Path) -> None:
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise TorripError(
            f"the agent's socket path is too long for a Unix socket: {path}",
            hint="Set XDG_RUNTIME_DIR to a shorter folder.",
        )
