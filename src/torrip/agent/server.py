"""The agent daemon: one loop serving the control socket and driving the seeder.

    AgentServer(settings, agent_paths(settings), log=log).run()   # until stopped

``run`` takes the run folder's lock (one agent per user: a second one exits at
once, whoever started it), then the state's lock (one agent per cache), opens the
libtorrent session, binds the control socket, writes the pid file, and serves
until a ``stop`` request, SIGTERM or SIGINT. Locks are flock(2) locks, released
by the kernel however the agent dies, so files a killed agent left behind (socket,
pid file) are simply replaced by the next one.

Every connection's peer uid is checked (SO_PEERCRED, on Linux) on top of the
folder's 0700 mode: a process of another user is answered with an error and
disconnected. Nothing listens on TCP for control.
"""

from __future__ import annotations

import contextlib
import gc
import os
import selectors
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, BinaryIO

from torrip import __version__
from torrip.agent.paths import AgentPaths, check_socket_path, ensure_private_dir
from torrip.agent.protocol import (
    MAX_MESSAGE,
    OPERATIONS,
    PROTOCOL_VERSION,
    AgentError,
    ProtocolError,
    decode,
    encode,
    failure,
    success,
)
from torrip.agent.seeder import FileToSeed, Seeder
from torrip.agent.state import AgentState, load_state, save_state
from torrip.config import Settings
from torrip.errors import TorripError
from torrip.fsutil import atomic_write

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no agent
    fcntl = None  # type: ignore[assignment]

__all__ = ["AgentAlreadyRunning", "AgentServer", "peer_uid"]

Log = Callable[[str], None]
_POLL_SECONDS = 0.25
_SEND_TIMEOUT = 5.0
_HEX = frozenset("0123456789abcdef")


class AgentAlreadyRunning(AgentError):
    """Another agent holds the lock of this user's run folder, or of this cache."""


def peer_uid(connection: socket.socket) -> int | None:
    """The uid of the process at the other end of a Unix socket; None where unknown."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:  # pragma: no cover - not Linux: the 0700 folder is the guard
        return None
    data = connection.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", data)
    return int(uid)


@dataclass
class _Connection:
    sock: socket.socket
    buffer: bytearray = field(default_factory=bytearray)


class AgentServer:
    def __init__(self, settings: Settings, paths: AgentPaths, *, log: Log) -> None:
        self.settings = settings
        self.paths = paths
        self.log = log
        self.stopping = False
        self.started = time.time()
        self.state_problem: str | None = None
        self.seeder: Seeder | None = None
        self._locks: list[BinaryIO] = []
        self._listener: socket.socket | None = None
        self._selector = selectors.DefaultSelector()

    # -- lifetime ---------------------------------------------------------------------

    def run(self) -> int:
        gc.enable()  # the CLI turns it off for short commands; the agent runs for days
        try:
            self._take_locks()
            state = self._load_state()
            self.seeder = Seeder(self.settings, state, log=self.log)
            self.seeder.open()
            self._bind()
            atomic_write(self.paths.pid_file, f"{os.getpid()}\n".encode())
            self._install_signal_handlers()
            self.seeder.refresh()
            self.log(
                f"agent {os.getpid()} serving {self.paths.socket}; listening for peers on "
                f"{', '.join(self.seeder.listen) or 'nothing'}; "
                f"{len(self.seeder.pending)} files to seed from {self.settings.cache_dir}"
            )
            self._loop()
        finally:
            self._shut_down()
        return 0

    def _take_locks(self) -> None:
        ensure_private_dir(self.paths.run)
        check_socket_path(self.paths.socket)
        self._locks.append(self._lock(self.paths.lock_file, "this user"))
        self.paths.state.mkdir(parents=True, exist_ok=True)
        self._locks.append(
            self._lock(self.paths.state_lock, f"the cache {self.settings.cache_dir}")
        )

    def _lock(self, path: os.PathLike[str], what: str) -> BinaryIO:
        handle = open(path, "a+b")  # noqa: SIM115 - held for the agent's lifetime
        if fcntl is None:  # pragma: no cover
            return handle
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise AgentAlreadyRunning(
                f"a torrip agent already runs for {what}",
                hint="`torrip agent status` shows it; `torrip agent stop` stops it.",
            ) from None
        return handle

    def _load_state(self) -> AgentState:
        state, problem = load_state(self.paths.state_file)
        if problem is not None:
            self.state_problem = problem
            self.log(f"{problem}; rebuilding the state from the cache")
        return state if state is not None else AgentState()

    def _bind(self) -> None:
        path = self.paths.socket
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # a killed agent's; we hold the lock, so it is nobody's now
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        mask = os.umask(0o177)  # the socket is created 0600
        try:
            listener.bind(os.fspath(path))
        finally:
            os.umask(mask)
        listener.listen(16)
        listener.setblocking(False)
        self._listener = listener
        self._selector.register(listener, selectors.EVENT_READ, None)

    def _install_signal_handlers(self) -> None:
        def stop(signum: int, _frame: FrameType | None) -> None:
            self.log(f"signal {signal.Signals(signum).name}: stopping")
            self.stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        with contextlib.suppress(AttributeError, ValueError):
            signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a closed terminal is no reason

    def _shut_down(self) -> None:
        for key in list(self._selector.get_map().values()):
            with contextlib.suppress(OSError):
                key.fileobj.close()  # type: ignore[union-attr]
        self._selector.close()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self.paths.socket.unlink()
            with contextlib.suppress(OSError):
                if self.paths.pid_file.read_text().strip() == str(os.getpid()):
                    self.paths.pid_file.unlink()
        if self.seeder is not None:
            self.seeder.close()
            self._save()
            self.log(f"agent {os.getpid()} stopped")
        for handle in reversed(self._locks):
            handle.close()
        self._locks.clear()

    def _save(self) -> None:
        if self.seeder is None:
            return
        try:
            save_state(self.paths.state_file, self.seeder.state)
            self.seeder.dirty = False
        except OSError as error:
            self.log(f"cannot write {self.paths.state_file}: {error.strerror or error}")

    # -- the loop ---------------------------------------------------------------------

    def _loop(self) -> None:
        assert self.seeder is not None
        while not self.stopping:
            for key, _events in self._selector.select(_POLL_SECONDS):
                if key.data is None:
                    self._accept()
                else:
                    self._read(key.data)
            self.seeder.poll()
            if self.seeder.due_save():
                self._save()

    def _accept(self) -> None:
        assert self._listener is not None
        try:
            sock, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        sock.settimeout(_SEND_TIMEOUT)
        uid = peer_uid(sock)
        if uid is not None and uid != os.getuid():
            self.log(f"refused a control connection from uid {uid}")
            with contextlib.suppress(OSError):
                sock.sendall(
                    encode(failure(f"permission denied: this agent serves uid {os.getuid()}"))
                )
            sock.close()
            return
        self._selector.register(sock, selectors.EVENT_READ, _Connection(sock))

    def _read(self, connection: _Connection) -> None:
        try:
            data = connection.sock.recv(65536)
        except (BlockingIOError, InterruptedError, TimeoutError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(connection)
            return
        connection.buffer += data
        while b"\n" in connection.buffer:
            line, _, rest = bytes(connection.buffer).partition(b"\n")
            connection.buffer = bytearray(rest)
            if not self._answer(connection, line):
                return
        if len(connection.buffer) > MAX_MESSAGE:
            self._send(connection, failure(f"a message exceeds {MAX_MESSAGE} bytes"))
            self._close(connection)

    def _answer(self, connection: _Connection, line: bytes) -> bool:
        try:
            answer = self.handle(decode(line))
        except ProtocolError as error:
            answer = failure(str(error), hint="See docs/agent.md for the protocol.")
        except TorripError as error:
            answer = failure(error.message, error.hint)
        return self._send(connection, answer)

    def _send(self, connection: _Connection, answer: dict[str, Any]) -> bool:
        try:
            connection.sock.sendall(encode(answer))
        except (OSError, ProtocolError):
            self._close(connection)
            return False
        return True

    def _close(self, connection: _Connection) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(connection.sock)
        connection.sock.close()

    # -- requests ---------------------------------------------------------------------

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """The answer to one request (see docs/agent.md)."""
        assert self.seeder is not None
        op = request.get("op")
        if op == "ping":
            return success(self._identity())
        if op == "status":
            return success({**self._identity(), **self._status()})
        if op == "list":
            return success({"files": self.seeder.files()})
        if op == "add":
            files = _files_to_seed(request)
            bad = [f.sha256 for f in files if len(f.sha256) != 64 or not set(f.sha256) <= _HEX]
            if bad:
                return failure(f"not sha256 digests: {', '.join(bad[:3])}")
            result = self.seeder.add(files, _strings(request, "environments"))
            self._save()
            return success(result)
        if op == "remove":
            result = self.seeder.remove(_strings(request, "files"))
            self._save()
            return success(result)
        if op == "stop":
            self.stopping = True
            return success({"pid": os.getpid()})
        return failure(f"unknown op {op!r}", hint=f"Known: {', '.join(OPERATIONS)}.")

    def _identity(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "version": __version__, "protocol": PROTOCOL_VERSION}

    def _status(self) -> dict[str, Any]:
        assert self.seeder is not None
        return {
            "started": self.started,
            "uptime": time.time() - self.started,
            "python": sys.executable,
            "cache_dir": str(self.settings.cache_dir),
            "socket": str(self.paths.socket),
            "state_file": str(self.paths.state_file),
            "state_rebuilt": self.state_problem,
            **self.seeder.status(),
        }


def _files_to_seed(request: dict[str, Any]) -> list[FileToSeed]:
    """``files``: sha256 digests, or objects that also name the file and its announced torrent."""
    value = request.get("files", [])
    if not isinstance(value, list):
        raise ProtocolError("'files' must be a list")
    files = []
    for item in value:
        if isinstance(item, str):
            files.append(FileToSeed(item))
            continue
        if not isinstance(item, dict) or not isinstance(item.get("sha256"), str):
            raise ProtocolError("each of 'files' must be a sha256 or an object with a sha256")
        fields = {}
        for key in ("filename", "btih", "btmh", "url"):
            field_value = item.get(key)
            if field_value is not None and not isinstance(field_value, str):
                raise ProtocolError(f"files[].{key} must be a string")
            fields[key] = field_value
        files.append(FileToSeed(item["sha256"], **fields))
    return files


def _strings(request: dict[str, Any], key: str) -> list[str]:
    value = request.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ProtocolError(f"{key!r} must be a list of strings")
    return list(value)
