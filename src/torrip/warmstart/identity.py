"""What a warm-start server must share with a command to run it, and where it listens.

Standard library only, and cheap: the ``torrip`` command computes this before it has
imported anything else.
"""

from __future__ import annotations

import marshal
import os
import stat
import sys
import time
import zlib

from torrip.rundir import MAX_SOCKET_PATH, run_dir

TYPE_CHECKING = False  # not typing's: importing typing costs 2-3 ms of every command
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "FAILURE_SECONDS",
    "SERVED_COMMANDS",
    "could_serve",
    "enabled",
    "failure_path",
    "identity",
    "private_run_dir",
    "socket_path",
]

# Commands that end on their own. Not `agent` or `index serve`: servers of their own that
# should not live as children of this one; not `torrent`, `seed` or `completion`: rare.
SERVED_COMMANDS = frozenset(
    {
        "install",
        "uninstall",
        "download",
        "lock",
        "sync",
        "list",
        "freeze",
        "show",
        "check",
        "tree",
        "cache",
    }
)
# A server that failed to start is not started again for this long.
FAILURE_SECONDS = 3600.0
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def identity() -> bytes:
    """This process's interpreter, flags and import path (but for the script's own folder,
    ``sys.path[0]``, which the fork takes from the command), its groups and its network
    and mount namespaces: a server with another identity would import other code, or the
    same code differently, or reach other networks and files."""
    return marshal.dumps(
        (
            sys.executable,
            sys.prefix,
            sys.version,
            tuple(sys.path[1:]),
            tuple(sys.flags),
            tuple(sys.warnoptions),
            tuple(sorted((str(k), str(v)) for k, v in sys._xoptions.items())),
            os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
            os.getgid(),
            tuple(os.getgroups()),
            tuple(_namespace(kind) for kind in ("net", "mnt")),
        )
    )


def _namespace(kind: str) -> int:
    try:
        return os.stat(f"/proc/self/ns/{kind}").st_ino
    except OSError:
        return 0


def private_run_dir(environ: Mapping[str, str]) -> str | None:
    """The run folder if it exists, is a folder of this user's, and only theirs: a socket
    anywhere else could be someone else's, listening for our environment."""
    folder = run_dir(environ)
    try:
        info = os.lstat(folder)
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        return None
    if stat.S_IMODE(info.st_mode) & 0o077:
        return None
    return folder


def could_serve(path: str) -> bool:
    """Whether a server started for the socket ``path`` could serve: not where the path is
    too long, its run folder is in the way (another user's, or not a folder), or a server
    failed there within the hour. Each command would otherwise start one in vain."""
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        return False
    try:
        info = os.lstat(os.path.dirname(path))
    except FileNotFoundError:
        return True  # the server makes it
    except OSError:
        return False
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        return False
    try:
        failed = os.stat(failure_path(path)).st_mtime
    except OSError:
        return True
    return time.time() - failed > FAILURE_SECONDS


def socket_path(folder: str, ident: bytes) -> str:
    return os.path.join(folder, f"warm-{zlib.crc32(ident):08x}.sock")


def failure_path(socket: str) -> str:
    """Where a server that could not serve says why, beside its socket."""
    return socket.removesuffix(".sock") + ".failed"


def enabled(argv: Sequence[str], environ: Mapping[str, str]) -> bool:
    """Whether this command line may run in a warm-start server: a served command, and the
    ``warm-start`` setting on (the flag, else TORRIP_WARM_START, else the config file)."""
    if not argv or argv[0] not in SERVED_COMMANDS or sys.platform != "linux":
        return False
    if "--isolated" in argv:
        return False
    flags = [arg for arg in argv if arg in ("--warm-start", "--no-warm-start")]
    if flags:
        return flags[-1] == "--warm-start"
    variable = environ.get("TORRIP_WARM_START")
    if variable is not None:
        return variable.strip().lower() not in _FALSE
    return _config_file_value(environ) is not False


def _config_file_value(environ: Mapping[str, str]) -> bool | None:
    path = environ.get("TORRIP_CONFIG_FILE")
    if not path:
        base = environ.get("XDG_CONFIG_HOME", "").strip() or os.path.expanduser("~/.config")
        path = os.path.join(base, "torrip", "config.toml")
    try:
        with open(path, "rb") as file:
            text = file.read()
    except OSError:
        return None
    if b"warm" not in text:  # the common case: no TOML parser to import
        return None
    # Imported only now: 2-4 ms. A file it cannot read leaves the decision (and the error)
    # to the command itself, run in-process.
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        data = tomllib.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    table = data.get("torrip", data)
    value = table.get("warm-start", table.get("warm_start")) if isinstance(table, dict) else None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    return False if value is not None else None
