"""This user's private run folder, where the agent's and warm-start servers' sockets live.

Standard library only, and no pathlib: the ``torrip`` command looks here before it
imports anything.
"""

from __future__ import annotations

import os
import stat
import sys

TYPE_CHECKING = False  # not typing's: importing typing costs 2-3 ms of every command
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["MAX_SOCKET_PATH", "run_dir"]

# sun_path holds 108 bytes on Linux (104 on macOS), with the terminating NUL.
MAX_SOCKET_PATH = 103


def run_dir(environ: Mapping[str, str]) -> str:
    """``$XDG_RUNTIME_DIR/torrip``; without it, ``/run/user/<uid>/torrip`` when that exists,
    else ``<tmp>/torrip-<uid>`` (not created here)."""
    runtime = environ.get("XDG_RUNTIME_DIR", "")
    if runtime and os.path.isabs(runtime) and os.path.isdir(runtime):
        return os.path.join(runtime, "torrip")
    uid = os.getuid()
    systemd = f"/run/user/{uid}"
    if sys.platform.startswith("linux") and _owned_dir(systemd, uid):
        return os.path.join(systemd, "torrip")
    # tempfile.gettempdir's choice, without importing tempfile (and random, and hashlib).
    for variable in ("TMPDIR", "TEMP", "TMP"):
        folder = environ.get(variable, "")
        if folder and os.path.isdir(folder):
            return os.path.join(folder, f"torrip-{uid}")
    return f"/tmp/torrip-{uid}"


def _owned_dir(path: str, uid: int) -> bool:
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == uid and os.access(path, os.W_OK)
