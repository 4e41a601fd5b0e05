"""The warm-start server: torrip imported once, then a fork per command, forked ahead.

Started by ``torrip.warmstart.client.start_server`` as
``python -c "from torrip.warmstart.server import main; main()" SOCKET``. It stays single
threaded, because only a process with one thread can be forked safely (a fork copies other
threads' locks in whatever state they are): after importing it checks that no thread has
started, and refuses to serve otherwise.

It keeps one spare fork ahead of the next command (``Server``). The spare that takes a
command takes over its standard streams, working folder, environment, umask, ``sys.argv``
and ``sys.path``, runs ``torrip.cli.main.main`` as the command's own process would have,
and tells the command its exit status.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import importlib
import marshal
import os
import pkgutil
import select
import selectors
import signal
import socket
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, NoReturn

from torrip.install.forked import die_with_parent
from torrip.warmstart.identity import failure_path, identity, socket_path
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
    "multiprocessing.popen_fork",
    "multiprocessing.synchronize",
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
_HELD = (signal.SIGTERM, signal.SIGINT)


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
    with contextlib.suppress(FileNotFoundError):
        os.unlink(failure_path(path))
    try:
        _preload()
        _compile_patterns()
        if threading.active_count() != 1:
            raise RuntimeError("a thread started while importing; not serving")
        imported = _imported_files()
        # Every object so far lives as long as the server: out of the collector's sight,
        # so that no fork's collection writes to (and copies) the pages they are on.
        gc.freeze()
        Server(path, imported).serve()
    except Exception as error:
        # Said beside the socket: commands start no other server here for an hour.
        traceback.print_exc()
        with open(failure_path(path), "w") as marker:
            marker.write(f"{error!r}\n")


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


def _compile_patterns() -> None:
    """Fill the regular expression cache with what commands compile on first use, each
    time in each fork otherwise: 1-3 ms apiece, on the first index request (httpx's cookie
    handling builds a urllib Request), in each worker's first wheel (installer reads
    entry points with a ConfigParser of its own delimiters) and in the command's parser."""
    import configparser
    import urllib.request

    from torrip.cli.main import build_parser

    try:
        urllib.request.Request("http://localhost/")
        configparser.ConfigParser(delimiters="=")
        build_parser(only="install").parse_args(["install", "-q", "x"])
    except Exception as error:  # the forks compile them, as without a server
        print(f"warm start: patterns not compiled: {error!r}", file=sys.stderr)


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
    """Keeps one spare fork ready: forked ahead of the next command, its memory already
    its own, and waiting in accept(). The spare that takes a command runs it and answers
    for itself; the server only forks the next spare, and leaves when asked to.

    The next spare is forked as soon as a command is taken, but makes its memory its own
    (``_own_memory``, 15-18 ms of CPU) only once no command it forked runs: on two cores,
    a command's first 100 ms had to share them with it.
    """

    def __init__(self, path: str, imported: dict[str, tuple[int, int, int]]) -> None:
        self.path = path
        self.imported = imported
        self.identity = identity()
        self.spare = 0
        self.failed_spares = 0
        self.running: set[int] = set()  # commands taken by spares, not yet reaped
        self.go: int | None = None  # the spare's go-ahead to copy its memory (a pipe)
        self.stopping = False

    def serve(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # a dead server's: the lock says none runs
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        os.chmod(self.path, 0o600)
        bound = os.stat(self.path).st_ino
        self.listener.listen(64)
        self.wake_read, self.wake_write = os.pipe()
        os.set_blocking(self.wake_read, False)
        os.set_blocking(self.wake_write, False)
        # Spares say here that they took a command (T<pid>) or found a module changed (S).
        self.news_read, self.news_write = os.pipe()
        signal.set_wakeup_fd(self.wake_write, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        selector = selectors.DefaultSelector()
        selector.register(self.wake_read, selectors.EVENT_READ)
        selector.register(self.news_read, selectors.EVENT_READ)
        last = time.monotonic()
        try:
            self.spare = self._fork_spare()
            self._let_spare_copy()
            while not self.stopping:
                timeout = last + IDLE_SECONDS - time.monotonic()
                if timeout <= 0:
                    break
                for key, _ in selector.select(timeout):
                    if key.fileobj == self.wake_read:
                        with contextlib.suppress(BlockingIOError):
                            os.read(self.wake_read, 4096)
                        continue
                    if self._read_news():
                        last = time.monotonic()
                self._reap()
                if not self.spare and not self.stopping:
                    self.spare = self._fork_spare()
                self._let_spare_copy()
        finally:
            if self.spare:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.spare, signal.SIGTERM)
            self.listener.close()
            with contextlib.suppress(OSError):
                if os.stat(self.path).st_ino == bound:  # not a newer server's socket
                    os.unlink(self.path)

    def _read_news(self) -> bool:
        """What the spares said; True if the spare took a command."""
        taken = False
        for news in os.read(self.news_read, 4096).split():
            if news == b"S":
                _log("a module changed since it was imported: leaving")
                self.stopping = True
            else:
                self.running.add(int(news[1:]))
                if int(news[1:]) == self.spare:
                    taken = True
                    self.spare = 0
                    self.failed_spares = 0
                    self._close_go()
        return taken

    def _stop(self, _signum: int, _frame: object) -> None:
        self.stopping = True

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            code = os.waitstatus_to_exitcode(status)
            self.running.discard(pid)
            if pid == self.spare:  # died before taking a command
                _log(f"{pid}: a spare ended ({code})")
                self.spare = 0
                self._close_go()
                self.failed_spares += 1
                if self.failed_spares >= 3:  # said in warm-<id>.failed (``main``)
                    raise RuntimeError("three spares in a row ended before taking a command")
            elif code < 0:  # the command's own exit status went to the command
                _log(f"{pid}: killed by signal {-code}")

    def _let_spare_copy(self) -> None:
        """Tell the spare to make its memory its own, once no command runs beside it."""
        if self.go is not None and not self.running:
            with contextlib.suppress(OSError):
                os.write(self.go, b"g")
            self._close_go()

    def _close_go(self) -> None:
        if self.go is not None:
            os.close(self.go)
            self.go = None

    def _fork_spare(self) -> int:
        server = os.getpid()
        go_read, go_write = os.pipe()
        # Held until the spare has its own handlers: a SIGTERM at once would otherwise run
        # the server's handler in the spare, and leave it waiting for a command for good.
        signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
        pid = os.fork()
        if pid:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD)
            os.close(go_read)
            self._close_go()
            self.go = go_write
            return pid
        try:
            signal.set_wakeup_fd(-1)
            for signum in (signal.SIGCHLD, signal.SIGTERM):
                signal.signal(signum, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            die_with_parent(signal.SIGTERM, parent=server)  # a spare outlives no server
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD)
            for descriptor in (self.wake_read, self.wake_write, self.news_read, go_write):
                os.close(descriptor)
            self._close_go()  # an earlier spare's
            # A command may come first: then its process pays the copies as it goes, and
            # forks its install's workers itself.
            ready, _, _ = select.select([self.listener.fileno(), go_read], [], [])
            if self.listener.fileno() not in ready:
                _fork_workers_ahead((self.listener.fileno(), self.news_write, go_read))
                _own_memory()
            os.close(go_read)
            connection, _ = self.listener.accept()
            die_with_parent(0)  # a command runs to its end
            os.write(self.news_write, b"T%d\n" % os.getpid())
            self._serve(connection)
        except BaseException:
            traceback.print_exc()
        os._exit(1)

    def _serve(self, connection: socket.socket) -> None:
        """Answer the command; unless it is refused, run it (and never return)."""
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
            connection.sendall(b"Rchanged\n")
            os.write(self.news_write, b"S\n")
            return
        _log(f"{os.getpid()}: torrip {' '.join(request['argv'])}")
        connection.sendall(b"P%d\n" % os.getpid())
        # The command's go-ahead: one that gave up waiting for the answer runs in its own
        # process, and this one must not run it as well.
        if connection.recv(1) != b"G":
            return
        connection.settimeout(None)
        self.listener.close()
        os.close(self.news_write)
        self._run_command(connection, descriptors, request)

    def _changed(self) -> bool:
        for filename, signature in self.imported.items():
            try:
                if _signature(filename) != signature:
                    return True
            except OSError:
                return True
        return False

    def _run_command(
        self, connection: socket.socket, descriptors: list[int], request: dict[str, Any]
    ) -> NoReturn:
        code = 1
        try:
            _take_over(descriptors, request)
            _end_with_the_command(connection)
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
            # Said before the exit, whose unmapping of this process's memory (3 ms) the
            # command need not wait for; and the command leaves as soon as it hears it.
            signal.signal(signal.SIGIO, signal.SIG_IGN)
            with contextlib.suppress(OSError):
                connection.sendall(b"X%d\n" % code)
            os._exit(code)


def _log(line: str) -> None:
    """A line in the server's log, in one write: the server and its spares share the log's
    file offset, and a line printed in two writes (the text, then the newline) could take
    in another process's line between them."""
    with contextlib.suppress(OSError):
        os.write(2, f"{line}\n".encode(errors="replace"))


def _end_with_the_command(connection: socket.socket) -> None:
    """Interrupted, as a hangup interrupts a process, if the command's process goes away
    (killed: by a timeout of its caller, say) and so stops waiting for this one. The
    kernel signals the connection's end (SIGIO); the command writes nothing after its
    go-ahead, so anything readable is the end."""

    def hung_up(_signum: int, _frame: object) -> None:
        try:
            data = connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            signal.signal(signal.SIGIO, signal.SIG_IGN)
            raise KeyboardInterrupt

    signal.signal(signal.SIGIO, hung_up)
    descriptor = connection.fileno()
    fcntl.fcntl(descriptor, fcntl.F_SETOWN, os.getpid())
    fcntl.fcntl(descriptor, fcntl.F_SETFL, fcntl.fcntl(descriptor, fcntl.F_GETFL) | os.O_ASYNC)


def _fork_workers_ahead(close: tuple[int, ...]) -> None:
    """An install's unpacking workers, forked now, before this spare makes its memory its
    own (``torrip.install.unpacked.fork_ahead``): they keep sharing the server's pages, not
    the command's. ``close``: the server's descriptors, which they must not hold."""
    from torrip.install.prefetch import fork_workers_ahead

    try:
        fork_workers_ahead(close)
    except Exception:  # the command forks them itself
        traceback.print_exc()


def _own_memory() -> None:
    """Copy the server's memory into this spare now, while no command waits: a fork shares
    its parent's pages until it writes to them, and each first write costs a page fault
    and a copy (5-13 ms of a command). Linux 5.14's MADV_POPULATE_WRITE does it in one
    call per mapping; elsewhere nothing happens, and the command pays as it goes."""
    import ctypes

    populate_write = 23
    try:
        madvise = ctypes.CDLL(None, use_errno=True).madvise
        madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        with open("/proc/self/maps") as maps:
            regions = [line.split() for line in maps]
    except (OSError, AttributeError):
        return
    for region in regions:
        permissions = region[1]
        if "w" in permissions and permissions.endswith("p"):
            low, high = (int(bound, 16) for bound in region[0].split("-"))
            if madvise(low, high - low, populate_write) != 0:
                return  # an older kernel: EINVAL for all


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
    os.umask(request["umask"])  # the mode of the files it writes (atomic_write's too)
    for signum in request.get("ignored", ()):
        signal.signal(signum, signal.SIG_IGN)
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
