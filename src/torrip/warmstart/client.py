"""The ``torrip`` command's side: hand the command to a warm-start server, or say why not.

Runs before anything else is imported, so it uses builtin modules alone: ``_socket`` and
``_signal`` rather than ``socket`` and ``signal``, which import enum and selectors (7 ms
of the 10 this module would otherwise cost); no typing, pathlib or subprocess until a
server must start.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # signal.py's C half, without its enums
import _socket
import marshal
import os
import sys

from torrip.rundir import run_dir
from torrip.warmstart.identity import (
    could_serve,
    enabled,
    identity,
    private_run_dir,
    socket_path,
)
from torrip.warmstart.protocol import MAGIC, peer_uid

TYPE_CHECKING = False  # not typing's: importing typing costs 2-3 ms of every command
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["run_in_server", "start_server"]

# Signals a terminal sends the command's process; the fork that runs the command gets them.
_FORWARDED = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT)
_HANDSHAKE_SECONDS = 10.0


def run_in_server(argv: Sequence[str]) -> tuple[int | None, str | None]:
    """``(status, None)`` when a server ran the command; else ``(None, socket)``, with the
    socket path a server should be started at after the command ran in-process, or None
    when no server should start (warm start is off, or this command is not served)."""
    environ = os.environ
    if not enabled(argv, environ) or None in (sys.stdin, sys.stdout, sys.stderr):
        return None, None
    ident = identity()
    folder = private_run_dir(environ)
    path = socket_path(folder or run_dir(environ), ident)
    if folder is None:  # no run folder yet (the server makes it), or not one to trust
        return None, (path if could_serve(path) else None)
    connection = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    # Held back until the fork's pid is known, then forwarded to it (or, if no server runs
    # the command, delivered here as usual).
    _signal.pthread_sigmask(_signal.SIG_BLOCK, _FORWARDED)
    try:
        # A server that does not answer at once (stopped, swapped out) is not waited for:
        # the command runs here. The go-ahead below makes sure it does not run there too.
        connection.settimeout(_HANDSHAKE_SECONDS)
        try:
            connection.connect(path)
        except OSError:
            return None, (path if could_serve(path) else None)
        if peer_uid(connection) != os.getuid():
            return None, None
        return _hand_over(connection, argv, ident, path)
    finally:
        _signal.pthread_sigmask(_signal.SIG_UNBLOCK, _FORWARDED)
        connection.close()


def _hand_over(
    connection: _socket.socket, argv: Sequence[str], ident: bytes, path: str
) -> tuple[int | None, str | None]:
    umask = os.umask(0o022)
    os.umask(umask)
    try:
        cwd = os.getcwd()
    except OSError:  # a deleted working folder: the command says so in-process
        return None, None
    streams = (sys.stdin, sys.stdout, sys.stderr)
    # What this process ignores (nohup's SIGHUP, a background job's SIGINT), the fork
    # ignores too; the rest is passed on.
    ignored = [signum for signum in _FORWARDED if _signal.getsignal(signum) == _signal.SIG_IGN]
    request = marshal.dumps(
        {
            "identity": ident,
            "argv": list(argv),
            "argv0": sys.argv[0],
            "path": list(sys.path),
            "cwd": cwd,
            "env": dict(os.environ),
            "umask": umask,
            "stdio": [(stream.encoding, stream.errors) for stream in streams],
            "ignored": [int(signum) for signum in ignored],
        }
    )
    data = MAGIC + len(request).to_bytes(4, "big") + request
    descriptors = b"".join(fd.to_bytes(4, sys.byteorder) for fd in (0, 1, 2))
    answers = _Lines(connection)
    try:
        sent = connection.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, descriptors)])
        if sent < len(data):
            connection.sendall(data[sent:])
        started = answers.readline()
    except OSError:  # a closed standard stream, or a server that went away: run here
        return None, None
    if not started.startswith(b"P"):  # refused (it imported files that changed since)
        return None, path
    pid = int(started[1:])
    try:
        connection.sendall(b"G")  # go ahead: this process waits for you
        connection.settimeout(None)
    except OSError:
        return None, None

    forwarded: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        forwarded.append(signum)
        try:  # noqa: SIM105 - contextlib is one more import before the command runs
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for signum in _FORWARDED:
        if signum not in ignored:
            _signal.signal(signum, forward)
    _signal.pthread_sigmask(_signal.SIG_UNBLOCK, _FORWARDED)
    try:
        ended = answers.readline()
    except OSError:
        ended = b""
    if ended.startswith(b"X"):
        return int(ended[1:]), None
    if forwarded:  # it ended as that signal ends a process: said by the status alone
        return 128 + forwarded[-1], None
    sys.stderr.write("error: the command ended without an exit status (killed?)\n")
    return 1, None


class _Lines:
    """Lines from a socket, without socket.makefile (and the io machinery it needs)."""

    def __init__(self, connection: _socket.socket) -> None:
        self.connection = connection
        self.buffer = b""

    def readline(self) -> bytes:
        while b"\n" not in self.buffer:
            chunk = self.connection.recv(4096)
            if not chunk:
                line, self.buffer = self.buffer, b""
                return line
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line + b"\n"


def start_server(path: str) -> None:
    """Start a server for this interpreter at ``path``, in the background, for the next
    command; it outlives this one, in a session of its own."""
    import subprocess

    command = [
        sys.executable,
        *subprocess._args_from_interpreter_flags(),  # type: ignore[attr-defined]
        "-c",
        "from torrip.warmstart.server import main; main()",
        path,
    ]
    try:  # noqa: SIM105 - as above
        subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",
            start_new_session=True,
        )
    except OSError:
        pass
