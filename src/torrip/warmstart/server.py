"""The warm-start server: torrip imported once, then a fork per command.

Started by ``torrip.warmstart.client.start_server`` as
``python -c "from torrip.warmstart.server import main; main()" SOCKET``. It stays single
threaded, because only a process with one thread can be forked safely (a fork copies other
threads' locks in whatever state they are): after importing it checks that no thread has
started, and refuses to serve otherwise.

A fork takes over the command's standard streams, working folder, environment, umask,
``sys.argv`` and ``sys.path``, then runs ``torrip.cli.main.main`` as the command's own
process would have; the server reports its exit status to the command.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import importlib
import marshal
import os
import pkgutil
import selectors
import signal
import socket
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, NoReturn

from torrip.warmstart.identity import identity, socket_path
from torrip.warmstart.protocol import MAGIC, peer_uid

__all__ = ["IDLE_SECONDS", "main"]

IDLE_SECONDS = 600.0
_REQUEST_SECONDS = 5.0
_MAX_REQUEST = 16 * 1024 * 1024
# Modules torrip imports inside functions (the first time a command needs them), so that
# no fork has to. Not libtorrent: its session starts threads, and it is loaded only when
# a swarm download starts, as in a command's own process.
_LAZY_IMPORTS = (
    "certifi",
    "concurrent.futures.process",
    "configparser",
    "ctypes",
    "email.parser",
    "email.policy",
    "fnmatch",
    "httpx",
    "importlib.util",
    "installer.scripts",
    "isal.isal_zlib",
    "json",
    "multiprocessing",
    "multiprocessing.connection",
    "netrc",
    "packaging._musllinux",
    "packaging.metadata",
    "packaging.requirements",
    "resolvelib.resolvers",
    "rich.console",
    "rich.filesize",
    "rich.live",
    "rich.progress",
    "rich.table",
    "shutil",
    "ssl",
    "subprocess",
    "tempfile",
    "tomllib",
)
_NOT_PRELOADED = frozenset({"torrip.__main__"})


def main() -> None:
    path = sys.argv[1]
    # -c put the working folder first, where the ``torrip`` command has its own folder
    # (the identity leaves it out); each fork takes the command's.
    sys.path[0] = os.path.dirname(sys.executable)
    gc.disable()
    folder = os.path.dirname(path)
    if not os.path.isdir(os.path.dirname(folder)):
        return  # the runtime folder went away since the command looked (a test's, say)
    from torrip.agent.paths import ensure_private_dir

    try:
        ensure_private_dir(Path(folder))
    except Exception:  # nothing to tell: the next command runs in-process
        return
    if socket_path(folder, identity()) != path:
        return  # started by another interpreter, or with other flags
    stem = path.removesuffix(".sock")
    lock = os.open(stem + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return  # another server for this identity is starting or running
    os.ftruncate(lock, 0)
    os.write(lock, f"{os.getpid()}\n".encode())
    log = os.open(stem + ".log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    _preload()
    if threading.active_count() != 1:
        print("warm start: a thread started while importing; not serving", file=sys.stderr)
        return
    imported = _imported_files()
    # Every object so far lives as long as the server: out of the collector's sight, so
    # that no fork's collection writes to (and copies) the pages they are on.
    gc.freeze()
    Server(path, imported).serve()


def _preload() -> None:
    import torrip

    names = [module.name for module in pkgutil.walk_packages(torrip.__path__, "torrip.")]
    for name in [*names, *_LAZY_IMPORTS]:
        if name in _NOT_PRELOADED:
            continue
        try:
            importlib.import_module(name)
        except Exception:  # an optional module: the fork imports it if needed
            print(f"warm start: not preloaded: {name}", file=sys.stderr)


def _imported_files() -> dict[str, tuple[int, int, int]]:
    files: dict[str, tuple[int, int, int]] = {}
    for module in list(sys.modules.values()):
        filename = getattr(module, "__file__", None)
        if isinstance(filename, str):
            with contextlib.suppress(OSError):
                files[filename] = _signature(filename)
    return files


def _signature(filename: str) -> tuple[int, int, int]:
    info = os.stat(filename)
    return (info.st_mtime_ns, info.st_size, info.st_ino)


class Server:
    def __init__(self, path: str, imported: dict[str, tuple[int, int, int]]) -> None:
        self.path = path
        self.imported = imported
        self.identity = identity()
        self.children: dict[int, socket.socket] = {}
        self.accepting = True
        self.stopping = False

    def serve(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # a dead server's: the lock says none runs
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        os.chmod(self.path, 0o600)
        bound = os.stat(self.path).st_ino
        self.listener.listen(64)
        self.listener.setblocking(False)
        self.wake_read, self.wake_write = os.pipe()
        os.set_blocking(self.wake_read, False)
        os.set_blocking(self.wake_write, False)
        signal.set_wakeup_fd(self.wake_write, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ)
        self.selector.register(self.wake_read, selectors.EVENT_READ)
        last = time.monotonic()
        try:
            while True:
                if self.stopping:
                    self._stop_accepting(bound)
                if not self.children and not self.accepting:
                    break
                timeout = None if self.children else last + IDLE_SECONDS - time.monotonic()
                if timeout is not None and timeout <= 0:
                    break
                for key, _ in self.selector.select(timeout):
                    if key.fileobj is self.listener:
                        last = time.monotonic()
                        self._accept(bound)
                    else:
                        with contextlib.suppress(BlockingIOError):
                            os.read(self.wake_read, 4096)
                self._reap()
        finally:
            self._stop_accepting(bound)

    def _stop(self, _signum: int, _frame: object) -> None:
        self.stopping = True

    def _stop_accepting(self, bound: int) -> None:
        if not self.accepting:
            return
        self.accepting = False
        self.selector.unregister(self.listener)
        self.listener.close()
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == bound:  # not a newer server's socket
                os.unlink(self.path)

    def _accept(self, bound: int) -> None:
        try:
            connection, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        descriptors: list[int] = []
        try:
            connection.setblocking(True)
            connection.settimeout(_REQUEST_SECONDS)
            if peer_uid(connection) != os.getuid():
                return
            request, descriptors = _receive(connection)
            if request is None or len(descriptors) != 3:
                return
            if request.get("identity") != self.identity:
                connection.sendall(b"Ridentity\n")
                return
            if self._changed():
                print("a module changed since it was imported: leaving", file=sys.stderr)
                connection.sendall(b"Rchanged\n")
                self.stopping = True
                return
            pid = os.fork()
            if pid == 0:
                self._run_command(connection, descriptors, request)
            print(f"{pid}: torrip {' '.join(request['argv'])}", file=sys.stderr, flush=True)
            self.children[pid] = connection
            connection.settimeout(None)
            connection.sendall(b"P%d\n" % pid)
            connection = None  # type: ignore[assignment]  # answered when the fork ends
        except OSError as error:
            print(f"warm start: a request failed: {error}", file=sys.stderr)
        finally:
            for descriptor in descriptors:
                os.close(descriptor)
            if connection is not None:
                connection.close()

    def _changed(self) -> bool:
        for filename, signature in self.imported.items():
            try:
                if _signature(filename) != signature:
                    return True
            except OSError:
                return True
        return False

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            connection = self.children.pop(pid, None)
            if connection is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            code = 128 - code if code < 0 else code  # killed by signal -code, as shells say
            print(f"{pid}: exit status {code}", file=sys.stderr, flush=True)
            with contextlib.suppress(OSError):
                connection.sendall(b"X%d\n" % code)
            connection.close()

    def _run_command(
        self, connection: socket.socket, descriptors: list[int], request: dict[str, Any]
    ) -> NoReturn:
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            for signum in (signal.SIGCHLD, signal.SIGTERM):
                signal.signal(signum, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self.selector.close()
            self.listener.close()
            os.close(self.wake_read)
            os.close(self.wake_write)
            # The connection stays open: the command sees it end only when both the
            # server and this fork are gone.
            _take_over(descriptors, request)
            from torrip.cli.main import main as run_command

            code = run_command(request["argv"])
        except SystemExit as exit_:
            code = _exit_code(exit_)
        except KeyboardInterrupt:
            code = 130
        except BaseException:  # reported, as the interpreter would have
            traceback.print_exc()
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os._exit(code)


def _receive(connection: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    data, descriptors, _flags, _address = socket.recv_fds(connection, 65536, 3)
    if len(data) < 8 or data[:4] != MAGIC:
        return None, descriptors
    length = int.from_bytes(data[4:8], "big")
    if length > _MAX_REQUEST:
        return None, descriptors
    payload = bytearray(data[8:])
    while len(payload) < length:
        chunk = connection.recv(length - len(payload))
        if not chunk:
            return None, descriptors
        payload += chunk
    request = marshal.loads(payload)
    return (request if isinstance(request, dict) else None), descriptors


def _take_over(descriptors: list[int], request: dict[str, Any]) -> None:
    """Become the command's process: its streams, folder, environment, umask, arguments."""
    for target, descriptor in enumerate(descriptors):
        os.dup2(descriptor, target)
        os.close(descriptor)
    descriptors.clear()
    os.chdir(request["cwd"])
    os.umask(request["umask"])
    os.environ.clear()
    os.environ.update(request["env"])
    # What the interpreter took from its environment at start: the time zone and the
    # character type locale (its encodings are in the identity, with sys.flags.utf8_mode).
    time.tzset()
    import locale

    with contextlib.suppress(locale.Error):
        locale.setlocale(locale.LC_CTYPE, "")
    sys.argv = [request["argv0"], *request["argv"]]
    sys.path[:] = request["path"]
    (in_encoding, in_errors), (out_encoding, out_errors), (err_encoding, err_errors) = request[
        "stdio"
    ]
    # New text streams over the command's descriptors: buffered by line when a terminal,
    # as the interpreter would have made them for the command's own process.
    streams = {
        "stdin": open(0, encoding=in_encoding, errors=in_errors, closefd=False),  # noqa: SIM115
        "stdout": open(1, "w", encoding=out_encoding, errors=out_errors, closefd=False),  # noqa: SIM115
        "stderr": open(  # noqa: SIM115
            2, "w", buffering=1, encoding=err_encoding, errors=err_errors, closefd=False
        ),
    }
    for name, stream in streams.items():
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)
    import tempfile

    tempfile.tempdir = None  # chosen again from this environment's TMPDIR


def _exit_code(exit_: SystemExit) -> int:
    if exit_.code is None:
        return 0
    if isinstance(exit_.code, int):
        return exit_.code
    print(exit_.code, file=sys.stderr)
    return 1
