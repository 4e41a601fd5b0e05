"""Unpack each wheel once into the cache; every install then links its files from there.

``unpack_wheel`` checks the wheel (``safety``: names, zip structure, RECORD), inflates
every file into a staging folder of the ``UnpackedCache`` while comparing its bytes with
RECORD's hash, and publishes the folder with one rename. A wheel that fails any check
raises UnsafeWheelError and leaves nothing behind. What the checks found is kept next to
the files (``.manifest.json``), so a later install reads neither the zip nor RECORD.

The files are shared with every environment that links them. Each one's size and mtime
are kept in the manifest and compared when the entry is opened: a file changed since (say
edited in place through a hard link in some site-packages) makes the entry stale, and it
is unpacked again from the wheel, so an install never spreads an edit.

Usage::

    store = UnpackedCache(settings.cache_dir)
    unpacked = unpack_wheel(store, path, sha256)    # cached, or unpacked now
    verified = unpacked.place(environment.scheme)   # where each file goes, checked

    with Unpacker(store) as unpacker:               # in the background, as files arrive
        fetcher.fetch_all(requests, on_fetched=lambda r: unpacker.submit(r.path, r.sha256))
        unpacked = unpacker.result(path, sha256)    # waits; raises what unpacking raised
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import itertools
import json
import os
import signal
import sys
import tempfile
import threading
from binascii import b2a_base64
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from torrip.cache import UnpackedCache
from torrip.closing import Closing
from torrip.errors import CacheError, UnsafeWheelError
from torrip.install.forked import die_with_parent, only_thread
from torrip.install.safety import (
    CheckedWheel,
    EntryPointScript,
    LayoutFile,
    VerifiedWheel,
    WheelLayout,
    member_scheme,
    open_checked_wheel,
    place_wheel,
)

if TYPE_CHECKING:
    # multiprocessing is imported when processes start: a warm install never needs it.
    from concurrent.futures import ProcessPoolExecutor


__all__ = [
    "CommandContext",
    "ForkedWorkers",
    "LargestFirst",
    "UnpackedWheel",
    "Unpacker",
    "fork_ahead",
    "forked_workers",
    "open_unpacked",
    "to_unpack",
    "unpack_wheel",
    "unpacked_store",
    "worth_processes",
]

T = TypeVar("T")

_MANIFEST = ".manifest.json"
_TREE = "tree"
_FORMAT = 1
# Members up to this size are inflated in one read; larger ones are streamed.
_WHOLE_READ_LIMIT = 8 << 20
_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows would translate newlines without it
_URLSAFE = bytes.maketrans(b"+/", b"-_")  # base64's alphabet to the urlsafe one
# Wheels to unpack, in bytes, from which worker processes pay off: started afresh
# (``worth_processes``), and forked (``forked_workers``).
PROCESSES_MIN_BYTES = 16 << 20
FORK_MIN_BYTES = 4 << 20
# How long threads that are ending may take before the workers are not forked after all.
_THREADS_END_TIMEOUT = 0.05
_START_TIMEOUT = 30.0


class UnpackedWheel(NamedTuple):
    """A wheel unpacked in the cache: its files under ``tree``, each checked against RECORD."""

    sha256: str
    """Of the wheel file."""
    tree: Path
    layout: WheelLayout
    """Each file's ``digest`` is ``sha256=`` of its bytes: what the installed RECORD lists."""

    def place(self, scheme: Mapping[str, Path | str]) -> VerifiedWheel:
        """Where each file goes in ``scheme`` (UnsafeWheelError if outside it)."""
        return place_wheel(self.layout, scheme, self.tree)


def unpack_wheel(store: UnpackedCache, wheel: Path, sha256: str) -> UnpackedWheel:
    """The unpacked ``wheel`` (whose bytes have ``sha256``), from the cache or unpacked now.

    Raises UnsafeWheelError for a wheel that fails a check (nothing is kept then) and
    CacheError when the cache cannot be written.
    """
    found = open_unpacked(store, wheel, sha256)
    if found is not None:
        return found
    with store.lock(sha256):
        found = open_unpacked(store, wheel, sha256)  # another process may have been first
        if found is not None:
            return found
        if store.entry_dir(sha256).exists():
            store.discard(sha256)  # stale or damaged
        with store.staging(sha256) as staging:
            layout, mtimes = _unpack_into(wheel, staging / _TREE)
            manifest = _manifest(layout, mtimes, wheel)
            try:
                (staging / _MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
            except OSError as error:
                raise CacheError(staging, error.strerror or str(error)) from None
            entry = store.publish(staging, sha256)
    return UnpackedWheel(sha256, entry / _TREE, layout)


def open_unpacked(store: UnpackedCache, wheel: Path, sha256: str) -> UnpackedWheel | None:
    """The unpacked wheel if the cache has it intact; None if missing, damaged or changed."""
    entry = store.entry_dir(sha256)
    try:
        manifest = json.loads((entry / _MANIFEST).read_bytes())
        layout, mtimes = _layout_from(manifest, wheel)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    tree = entry / _TREE
    if not _intact(tree, layout.files, mtimes):
        return None
    return UnpackedWheel(sha256, tree, layout)


class Unpacker(Closing):
    """Unpacks wheels in the background as they arrive, one at a time per wheel.

    ``submit`` returns at once (call it from any thread, as often as you like); ``result``
    waits for one wheel and raises what unpacking it raised. Leaving the ``with`` block
    cancels what has not started and waits for what has.

    With ``processes`` the unpacking runs in worker processes: most of its time is Python
    code per file, which threads serialize on the GIL (measured on jupyterlab's 91 wheels,
    11,557 files, 2 cores: one thread 0.80 s, two threads 0.90 s, two processes 0.43 s).
    Starting them costs about 0.1 s, on a background thread while files download, so it is
    worth it only for much to unpack (``worth_processes``); ``forked`` ones (from
    ``forked_workers``) are ready at once, and stay their forker's to stop. Where processes
    cannot start, or one dies, the unpacking happens on the threads instead.
    """

    def __init__(
        self,
        store: UnpackedCache,
        *,
        workers: int | None = None,
        processes: bool = False,
        forked: ForkedWorkers | None = None,
    ) -> None:
        self.store = store
        self._workers = workers if workers is not None else _default_workers()
        self._use_processes = False
        self._processes: ProcessPoolExecutor | None = None
        self._owns_processes = forked is None  # forked ones belong to whoever forked them
        self._forked = forked
        if forked is not None:
            self._workers, self._processes, self._use_processes = forked.count, forked.pool, True
        # In this process the unpacking is serialized on the GIL: a second thread only adds
        # hand-offs of it (the web set, cold: 0.62 s against 0.68 s). With worker processes,
        # one thread per process hands them the wheels.
        threads = self._workers if processes or forked is not None else 1
        self._threads = LargestFirst(threads, "torrip-unpack")
        self._futures: dict[str, Future[UnpackedWheel]] = {}
        self._lock = threading.Lock()
        self._processes_lock = threading.Lock()
        self._closed = False
        if processes:
            self.enable_processes()

    def enable_processes(self) -> None:
        """Unpack in worker processes from now on; they start in the background."""
        with self._processes_lock:
            if self._use_processes or self._closed or self._workers < 2:
                return
            self._use_processes = True
        # Started while the files download; the first wheel to unpack waits for them.
        threading.Thread(target=self._process_pool, name="torrip-unpack-start", daemon=True).start()

    def submit(self, wheel: Path, sha256: str) -> None:
        with self._lock:
            if sha256 not in self._futures:
                self._futures[sha256] = self._threads.submit(
                    _size_of(wheel), partial(self._unpack, wheel, sha256)
                )

    def result(self, wheel: Path, sha256: str) -> UnpackedWheel:
        self.submit(wheel, sha256)
        unpacked = self._futures[sha256].result()
        if unpacked.layout.path != wheel:  # the same bytes under another name: name that one
            layout = unpacked.layout._replace(path=wheel)
            unpacked = UnpackedWheel(unpacked.sha256, unpacked.tree, layout)
        return unpacked

    def forget(self, sha256: str) -> None:
        """Drop the outcome for ``sha256`` (a failed unpacking of a file since replaced),
        so that the next ``submit`` or ``result`` unpacks it anew."""
        with self._lock:
            self._futures.pop(sha256, None)

    def adopt(self, unpacked: UnpackedWheel) -> None:
        """A wheel unpacked elsewhere (in a worker, by ``unpack_wheel``): ``result`` gives it."""
        done: Future[UnpackedWheel] = Future()
        done.set_result(unpacked)
        with self._lock:
            self._futures.setdefault(unpacked.sha256, done)

    @property
    def uses_processes(self) -> bool:
        """Whether worker processes unpack (started, or being started)."""
        return self._use_processes

    def close(self) -> None:
        with self._processes_lock:
            self._closed = True
        self._threads.shutdown()
        with self._processes_lock:
            self._use_processes = False
            if self._processes is not None and self._owns_processes:
                self._processes.shutdown(wait=True, cancel_futures=True)
            self._processes = None

    def _unpack(self, wheel: Path, sha256: str) -> UnpackedWheel:
        found = open_unpacked(self.store, wheel, sha256)  # already there: no process needed
        if found is not None:
            return found
        pool = self._process_pool()
        if pool is not None:
            from concurrent.futures.process import BrokenProcessPool

            submit = self._forked.submit if self._forked is not None else pool.submit
            try:
                return submit(unpack_wheel, self.store, wheel, sha256).result()
            except BrokenProcessPool:  # a worker died (killed, out of memory): do it here
                pass
        return unpack_wheel(self.store, wheel, sha256)

    def _process_pool(self) -> ProcessPoolExecutor | None:
        with self._processes_lock:
            if self._use_processes and self._processes is None and not self._closed:
                self._processes = _start_processes(self._workers)
                self._use_processes = self._processes is not None
            return self._processes


class LargestFirst:
    """Threads that take the largest job first. A wheel's size stands for how long it takes
    to unpack: when the longest start earliest, the last one ends soonest (with first come,
    first served, jupyterlab's own 17 MB wheel, done downloading early, waited behind 80
    small ones and ended 0.2 s after everything else)."""

    def __init__(self, workers: int, name: str) -> None:
        self._jobs: list[tuple[int, int, Future[Any], Callable[[], Any]]] = []  # a heap
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._closed = False
        self._limit = workers  # jobs running at once (``limit``)
        self._running = 0
        # Started with the first job: a cold install's unpacking threads often get none
        # (its workers unpack), and each start takes the GIL from the resolver.
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}_{i}", daemon=True)
            for i in range(workers)
        ]
        self._started = False

    def submit(self, size: int, job: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        with self._changed:
            if self._closed:
                raise RuntimeError("submit after shutdown")
            heapq.heappush(self._jobs, (-size, next(self._order), future, job))
            self._changed.notify()
            if not self._started:
                self._started = True
                for thread in self._threads:
                    thread.start()
        return future

    def limit(self, jobs: int | None) -> None:
        """Run at most ``jobs`` at once from now on (None: one per thread)."""
        with self._changed:
            self._limit = len(self._threads) if jobs is None else max(1, jobs)
            self._changed.notify_all()

    def shutdown(self) -> None:
        """Cancel what has not started, and wait for what has."""
        with self._changed:
            self._closed = True
            pending, self._jobs = self._jobs, []
            self._changed.notify_all()
        for _, _, future, _ in pending:
            future.cancel()
        if self._started:
            for thread in self._threads:
                thread.join()

    def _work(self) -> None:
        while True:
            with self._changed:
                while not self._closed and (not self._jobs or self._running >= self._limit):
                    self._changed.wait()
                if not self._jobs:
                    return
                _, _, future, job = heapq.heappop(self._jobs)
                self._running += 1
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        result = job()
                    except BaseException as error:  # handed to whoever waits for it
                        future.set_exception(error)
                    else:
                        future.set_result(result)
            finally:
                with self._changed:
                    self._running -= 1
                    self._changed.notify()


def _size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def to_unpack(store: UnpackedCache, wheels: Iterable[tuple[str | None, int | None]]) -> int:
    """Bytes of the wheels (sha256, size) not unpacked yet."""
    return sum(
        size or 0
        for sha256, size in wheels
        if sha256 is None or not store.entry_dir(sha256).is_dir()
    )


def worth_processes(store: UnpackedCache, wheels: Iterable[tuple[str | None, int | None]]) -> bool:
    """Whether the wheels (sha256, size) not unpacked yet are, together, enough to unpack in
    worker processes started afresh (``Unpacker.enable_processes``)."""
    return to_unpack(store, wheels) >= PROCESSES_MIN_BYTES


@contextlib.contextmanager
def unpacked_store(root: Path, *, no_cache: bool = False) -> Iterator[UnpackedCache]:
    """The unpacked cache under ``root``; with the cache off or not writable (a read-only
    shared cache), a temporary one, deleted on exit."""
    if not no_cache:
        store = UnpackedCache(root)
        if store.writable():
            yield store
            return
    with tempfile.TemporaryDirectory(prefix="torrip-unpacked-") as folder:
        yield UnpackedCache(Path(folder))


def _default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 4))


class CommandContext(NamedTuple):
    """What a command's process has that workers forked before the command (``fork_ahead``)
    take on with each job: the working folder, the umask (the mode of the files they
    write in the cache) and the environment (proxies, netrc, CA settings, TMPDIR)."""

    pid: int  # the command's process: a worker takes it on once
    cwd: str
    umask: int
    environ: dict[str, str]


@dataclass(frozen=True)
class ForkedWorkers:
    """Unpacking worker processes forked by ``forked_workers``, for an Unpacker to use."""

    pool: ProcessPoolExecutor
    count: int
    context: CommandContext | None = None
    """Forked ahead of the command: what each job takes on first (``submit``)."""

    def submit(self, function: Callable[..., T], /, *args: Any) -> Future[T]:
        """``function(*args)`` in a worker, in the command's context."""
        if self.context is None:
            return self.pool.submit(function, *args)
        return self.pool.submit(_in_context, self.context, function, *args)


@contextlib.contextmanager
def forked_workers(
    pending: int, *, workers: int | None = None, before_fork: Callable[[], object] = int
) -> Iterator[ForkedWorkers | None]:
    """Worker processes forked now to unpack ``pending`` bytes of wheels, or None.

    A fork copies this process, with the modules unpacking needs already imported, in a
    few milliseconds; a fresh interpreter (forkserver, spawn) takes about 0.1 s to start
    and import them, which pays off only for much to unpack (``worth_processes``). Forked,
    they pay off from about 4 MB (cold installs from a mirror: the web set's 9 MB 0.64 s
    against 0.69 s, black's 2.5 MB 0.36 s against 0.31 s).

    None where forking is not safe: on other systems than Linux (macOS's system libraries
    are not fork-safe), and while another thread runs, since a fork copies other threads'
    locks (OpenSSL's, the allocator's) in whatever state they are in and a child could wait
    on them forever. Call it before starting threads; threads that are ending (the
    resolver's) get a moment to end. ``workers``: how many (default: one per core, up to
    four); ``before_fork()`` is called just before they are (what they should inherit).
    Workers forked ahead of the command (``fork_ahead``) are taken instead, if there are
    as many; ``before_fork`` was called then. Leaving the block stops the workers.
    """
    workers = workers or _default_workers()
    forked = None
    if pending >= FORK_MIN_BYTES and workers > 1 and sys.platform.startswith("linux"):
        forked = _take_ahead(workers)
        if forked is None:
            pool = _fork_processes(workers, before_fork)
            forked = None if pool is None else ForkedWorkers(pool, workers)
    try:
        yield forked
    finally:
        if forked is not None:
            forked.pool.shutdown(wait=True, cancel_futures=True)


# Workers forked ahead (``fork_ahead``): the process that forked them, the pool, how many.
_ahead: tuple[int, ProcessPoolExecutor, int] | None = None


def fork_ahead(*, before_fork: Callable[[], object] = int, close: Iterable[int] = ()) -> bool:
    """Fork the unpacking workers now, ahead of the command this process is to run: the
    warm-start spare does, while it waits for one. ``forked_workers`` then takes them as
    they are: the command's start waits for no fork, and its memory, which the spare makes
    its own after this (``warmstart.server``), is not shared with the workers while it
    runs (each first write to a shared page costs a fault and a copy). They take on the
    command's working folder, umask and environment with their first job
    (``CommandContext``).

    They start no thread here, nor in a command that never uses them (a fork copies
    threads' locks as they are; and ``only_thread`` must stay true for a warm install's
    forked share). Whether they were forked: not on other systems than Linux, with one
    core, while another thread runs, or on a Python whose ``ProcessPoolExecutor`` cannot
    start its processes apart from its first job. ``close``: descriptors of this process
    the workers have no business holding (the server's listening socket)."""
    global _ahead
    workers = _default_workers()
    if _ahead is not None or workers < 2 or not sys.platform.startswith("linux"):
        return False
    if not only_thread(timeout=0.0):
        return False
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    before_fork()
    try:
        context = multiprocessing.get_context("fork")
        pool = ProcessPoolExecutor(
            workers,
            mp_context=context,
            initializer=_worker_start,
            initargs=(os.getpid(), tuple(close)),
        )
    except (OSError, ValueError):  # no semaphores in a sandbox
        return False
    # What the first submit calls to fork every worker before it starts the pool's thread
    # (since the fix of python/cpython#90622, late 2022: 3.10 and 3.11's later releases).
    launch = getattr(pool, "_launch_processes", None)
    if launch is None:
        pool.shutdown(wait=False)
        return False
    try:
        with _ctrl_c_blocked(tracker=False):
            launch()
    except OSError:  # no fork (a process limit): those forked end with this process
        return False
    _ahead = (os.getpid(), pool, workers)
    return True


def _take_ahead(workers: int) -> ForkedWorkers | None:
    """The workers ``fork_ahead`` forked, if this process did and they are ``workers``;
    now the command's, in its context (once only)."""
    global _ahead
    if _ahead is None or _ahead[0] != os.getpid() or _ahead[2] != workers:
        return None
    umask = _umask()
    if umask is None:
        return None
    _, pool, count = _ahead
    _ahead = None
    return ForkedWorkers(
        pool, count, CommandContext(os.getpid(), os.getcwd(), umask, {**os.environ})
    )


def _umask() -> int | None:
    """This process's umask, read without setting it (which would change it for a moment
    for every thread): Linux 4.7 and later say it in /proc."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return None


# In a worker forked ahead: the command whose context it took on (``_in_context``).
_taken_on: int | None = None


def _in_context(context: CommandContext, function: Callable[..., T], /, *args: Any) -> T:
    """In a worker forked ahead of a command: ``function(*args)``, in the command's
    working folder, umask and environment (taken on at its first job)."""
    global _taken_on
    if _taken_on != context.pid:
        os.chdir(context.cwd)
        os.umask(context.umask)
        os.environ.clear()
        os.environ.update(context.environ)
        tempfile.tempdir = None  # chosen again from this environment's TMPDIR
        _taken_on = context.pid
    return function(*args)


def _fork_processes(workers: int, before_fork: Callable[[], object]) -> ProcessPoolExecutor | None:
    if not only_thread(timeout=_THREADS_END_TIMEOUT):
        return None
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    before_fork()

    try:
        context = multiprocessing.get_context("fork")
        pool = ProcessPoolExecutor(
            workers, mp_context=context, initializer=_worker_start, initargs=(os.getpid(),)
        )
    except (OSError, ValueError):  # no semaphores in a sandbox
        return None
    try:
        with _ctrl_c_blocked(tracker=False):  # forked workers need no resource tracker
            pool.submit(os.getpid)  # forks them all now, before this process starts threads
    except OSError:  # no fork (a process limit, no memory)
        pool.shutdown(wait=False, cancel_futures=True)
        return None
    except BaseException:  # Ctrl-C, held back while forking: stop the workers first
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    return pool


def _start_processes(workers: int) -> ProcessPoolExecutor | None:
    """Worker processes that have imported this module, started now; None if they cannot be
    (no semaphores in a sandbox, a frozen executable...)."""
    if getattr(sys, "frozen", False):  # a frozen executable would start itself again
        return None
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    methods = multiprocessing.get_all_start_methods()
    # Never fork: this process runs threads (HTTP, libtorrent) that a fork would copy mid-step.
    method = "forkserver" if "forkserver" in methods else "spawn"
    pool = None
    try:
        context = multiprocessing.get_context(method)
        if method == "forkserver":
            context.set_forkserver_preload([__name__])
        with _ctrl_c_blocked():
            pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_start)
            for ready in [pool.submit(os.getpid) for _ in range(workers)]:
                ready.result(timeout=_START_TIMEOUT)
    except Exception:  # any failure to start them means threads, as before
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        return None
    return pool


@contextlib.contextmanager
def _ctrl_c_blocked(*, tracker: bool = True) -> Iterator[None]:
    """SIGINT blocked in this thread, and so in the processes it starts (a blocked signal
    stays blocked across fork and exec). Ctrl-C reaches the whole process group: the
    forkserver, importing torrip before it ignores SIGINT, would die with a traceback, and
    a worker before its initializer runs likewise. This process gets it all the same, on
    the main thread, which does not block it."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no process groups' Ctrl-C here
        yield
        return
    if tracker:
        from multiprocessing import resource_tracker

        # Started first, outside: starting it unblocks SIGINT in the calling thread again.
        resource_tracker.ensure_running()
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _worker_start(parent: int | None = None, close: tuple[int, ...] = ()) -> None:
    """In a worker: Ctrl-C is torrip's to handle (it stops the pool; nothing is installed).
    The workers, in the same process group, would each print a traceback of their own. And
    a worker ends with the process it was forked from (``parent``; a forkserver's workers
    with the forkserver, which ends with torrip), or it would wait for work forever.
    ``close``: descriptors it inherited and must not hold."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        die_with_parent(parent=parent)
    for descriptor in close:
        with contextlib.suppress(OSError):
            os.close(descriptor)


# -- unpacking -------------------------------------------------------------------------------


def _unpack_into(wheel: Path, tree: Path) -> tuple[WheelLayout, list[int]]:
    """Check ``wheel`` and write its files under ``tree``; the layout with each file's
    sha256, and each file's mtime (ns) for the intactness check."""
    files = []
    mtimes = []
    made: set[str] = set()
    root = os.fspath(tree) + os.sep
    with open_checked_wheel(wheel) as checked:
        for file in checked.layout.files:
            # Members are relative, '/'-separated, with no empty, '.' or '..' part (checked).
            target = root + file.member if os.sep == "/" else os.path.join(root, file.member)
            parent = target.rpartition(os.sep)[0]
            if parent not in made:
                _make_dirs(parent)
                made.add(parent)
            if file.size <= _WHOLE_READ_LIMIT:
                digest, mtime = _unpack_small(checked, file, target)
            else:
                digest, mtime = _unpack_large(checked, file, target)
            digest = f"sha256={digest}"
            # RECORD's own sha256 string, nearly always: the same file, not a new tuple.
            files.append(file if file.digest == digest else file._replace(digest=digest))
            mtimes.append(mtime)
        layout = checked.layout
    return layout._replace(files=tuple(files)), mtimes


def _unpack_small(checked: CheckedWheel, file: LayoutFile, target: str) -> tuple[str, int]:
    """Inflate one member in memory, compare it with RECORD, then write it: (sha256, mtime)."""
    data = checked.read(file.member)
    algorithm, _, expected = file.digest.partition("=")
    digest = _urlsafe(hashlib.sha256(data))
    actual = digest if algorithm == "sha256" else _urlsafe(hashlib.new(algorithm, data))
    if actual != expected.rstrip("="):
        raise UnsafeWheelError(checked.path, file.member, f"{algorithm} does not match RECORD")
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY, 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            mtime = _finish(fd, file.executable)
        finally:
            os.close(fd)
    except OSError as error:
        raise CacheError(target, error.strerror or str(error)) from None
    return digest, mtime


def _unpack_large(checked: CheckedWheel, file: LayoutFile, target: str) -> tuple[str, int]:
    """Stream one large member to ``target``, hashing as it goes; compared with RECORD after
    (the staging folder is deleted on a mismatch): (sha256, mtime)."""
    algorithm, _, expected = file.digest.partition("=")
    sha256 = hashlib.sha256()
    other = None if algorithm == "sha256" else hashlib.new(algorithm)
    size = 0
    try:
        output = open(target, "xb")  # noqa: SIM115 - closed below; its errors told apart
    except OSError as error:
        raise CacheError(target, error.strerror or str(error)) from None
    with output:
        for chunk in checked.stream(file.member):  # UnsafeWheelError if corrupt
            sha256.update(chunk)
            if other is not None:
                other.update(chunk)
            size += len(chunk)
            try:
                output.write(chunk)
            except OSError as error:
                raise CacheError(target, error.strerror or str(error)) from None
        actual = _urlsafe(other if other is not None else sha256)
        if (actual, size) != (expected.rstrip("="), file.size):
            raise UnsafeWheelError(checked.path, file.member, f"{algorithm} does not match RECORD")
        try:
            output.flush()  # the mtime kept must be the last write's
            mtime = _finish(output.fileno(), file.executable)
        except OSError as error:
            raise CacheError(target, error.strerror or str(error)) from None
    return _urlsafe(sha256), mtime


def _finish(fd: int, executable: bool) -> int:
    """Give a written file installer's x bits if it is executable; its mtime (ns)."""
    info = os.fstat(fd)
    if executable:  # x wherever r
        os.fchmod(fd, info.st_mode | (info.st_mode & 0o444) >> 2)
    return info.st_mtime_ns


def _make_dirs(path: str) -> None:
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise CacheError(path, error.strerror or str(error)) from None


def _urlsafe(digest: Any) -> str:
    """RECORD's form of a digest: urlsafe base64 without padding (all in C calls: this
    runs for every file unpacked)."""
    return b2a_base64(digest.digest(), newline=False).translate(_URLSAFE).rstrip(b"=").decode()


# -- the manifest ----------------------------------------------------------------------------


def _manifest(layout: WheelLayout, mtimes: list[int], wheel: Path) -> dict[str, Any]:
    return {
        "format": _FORMAT,
        "wheel": wheel.name,
        "name": layout.name,
        "version": layout.version,
        "dist_info": layout.dist_info,
        "root_scheme": layout.root_scheme,
        "data_dir": layout.data_dir,
        "files": [
            [file.member, file.digest, file.size, file.executable, mtime]
            for file, mtime in zip(layout.files, mtimes, strict=True)
        ],
        "scripts": [list(script) for script in layout.scripts],
    }


def _layout_from(manifest: dict[str, Any], wheel: Path) -> tuple[WheelLayout, list[int]]:
    """The layout a manifest describes; ValueError (or KeyError, TypeError) if malformed."""
    if manifest["format"] != _FORMAT:
        raise ValueError("another manifest format")
    data_dir = manifest["data_dir"]
    root_scheme = manifest["root_scheme"]
    data_prefix = f"{data_dir}/"
    files = []
    mtimes = []
    # Once per file of every wheel of a warm install (11,528 for jupyterlab): the common
    # case, a member outside .data/, takes no call.
    for member, digest, size, executable, mtime in manifest["files"]:
        if member.startswith(data_prefix):
            placed = member_scheme(member, data_dir, root_scheme)
            if placed is None:
                raise ValueError(f"bad manifest entry {member!r}")
            scheme, path = placed
        else:
            scheme, path = root_scheme, member
        if type(size) is not int or type(mtime) is not int:
            raise ValueError(f"bad manifest entry {member!r}")
        files.append(LayoutFile(member, scheme, path, digest, size, bool(executable)))
        mtimes.append(mtime)
    layout = WheelLayout(
        path=wheel,
        name=manifest["name"],
        version=manifest["version"],
        dist_info=manifest["dist_info"],
        root_scheme=root_scheme,
        data_dir=data_dir,
        files=tuple(files),
        scripts=tuple(EntryPointScript(*script) for script in manifest["scripts"]),
    )
    return layout, mtimes


def _intact(tree: Path, files: tuple[LayoutFile, ...], mtimes: list[int]) -> bool:
    """Every file is there with the size and mtime it was written with (one stat each,
    relative to the tree's open folder where the platform allows: the kernel then walks
    the member's path only, not the cache's as well)."""
    stat = os.stat
    folder = None
    prefix = os.fspath(tree) + os.sep
    try:
        if stat in os.supports_dir_fd:
            folder = os.open(tree, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            prefix = ""
        for file, mtime in zip(files, mtimes, strict=True):
            info = stat(prefix + file.member, dir_fd=folder)
            if info.st_size != file.size or info.st_mtime_ns != mtime:
                return False
    except OSError:
        return False
    finally:
        if folder is not None:
            os.close(folder)
    return True
